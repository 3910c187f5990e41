from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from pipeline.config import build, load_params
from core.errors import FRBenchError


@dataclass
class Inner:
    a: int
    b: float = 1.0


@dataclass
class Outer:
    name: str
    inner: Inner
    kind: Literal["x", "y"] = "x"
    items: list[int] = field(default_factory=list)
    maybe: Optional[Inner] = None
    table: dict[str, Inner] = field(default_factory=dict)


def test_build_nested_and_coerces_int_to_float():
    o = build(Outer, {"name": "n", "inner": {"a": 1, "b": 2}, "table": {"k": {"a": 3}}})
    assert o.inner.b == 2.0 and isinstance(o.inner.b, float)
    assert o.table["k"].a == 3 and o.maybe is None


@pytest.mark.parametrize("data, msg", [
    ({"name": "n", "inner": {"a": 1, "c": 2}}, "unknown key 'inner.c'"),
    ({"name": "n", "inner": {"a": 1}, "bogus": 1}, "unknown key 'bogus'"),
    ({"name": "n", "inner": {"a": "1"}}, "inner.a: expected an integer"),
    ({"name": "n", "inner": {"a": 1}, "kind": "z"}, "kind: 'z' is not one of"),
    ({"name": "n"}, "missing key 'inner'"),
    ({"name": "n", "inner": {"a": 1}, "table": {"k": {"b": 1}}}, "missing key 'table.k.a'"),
    ({"name": "n", "inner": {"a": True}}, "expected an integer"),
])
def test_build_rejects(data, msg):
    with pytest.raises(FRBenchError, match=msg.replace("(", r"\(")):
        build(Outer, data)


def test_repo_params_load():
    p = load_params("params.yaml")
    assert p.profile in ("builtin", "builtin_long", "paper")


def test_unknown_top_level_key(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("profile: builtin\nseed: 1\nsurprise: 3\n")
    with pytest.raises(FRBenchError, match="unknown key 'surprise'"):
        load_params(f)
