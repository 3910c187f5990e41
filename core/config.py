"""The strict params loader: mappings -> dataclasses that reject unknown keys.

Loader rules (``build``): every key must be a field (unknown -> FRBenchError naming the dotted
key and the allowed ones); fields without a default are required; ints are accepted for float
fields; nested dataclasses, ``list[T]``, ``dict[str, T]``, ``Optional[T]`` and ``Literal[...]``
are checked recursively. A field may carry ``metadata={"parse": fn}`` with ``fn(value, where)``
for polymorphic sections (e.g. one dataclass per method architecture). Each package owns the
dataclasses of its own params sections and builds them with this loader; the root ``Params``
lives in ``pipeline/config.py``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from core.errors import FRBenchError

_MISSING = dataclasses.MISSING


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except FRBenchError as e:
                errors.append(str(e))
        raise FRBenchError(errors[0] if len(errors) == 1 else
                           f"params: {where}: {value!r} matches none of {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise FRBenchError(f"params: {where}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise FRBenchError(f"params: {where}: expected a list, got {value!r}")
        return [_coerce(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise FRBenchError(f"params: {where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise FRBenchError(f"params: {where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise FRBenchError(f"params: {where}: expected a mapping, got {value!r}")
        vt = args[1] if args else Any
        return {str(k): _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FRBenchError(f"params: {where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FRBenchError(f"params: {where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise FRBenchError(f"params: {where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise FRBenchError(f"params: {where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise FRBenchError(f"params: {where}: expected {_type_name(tp)}, got {value!r}")
    return value


def build(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and checking types."""
    label = where or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FRBenchError(f"params: {label}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise FRBenchError(f"params: unknown key '{key}' (allowed under '{label}': "
                           f"{', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:  # type: ignore[misc]
                raise FRBenchError(f"params: missing key '{sub}'")
            continue
        parse = f.metadata.get("parse")
        kwargs[name] = parse(data[name], sub) if parse else _coerce(hints[name], data[name], sub)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(where or cls.__name__)
    return obj


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FRBenchError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise FRBenchError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise FRBenchError(f"{path}: expected a mapping at the top level")
    return data


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict (for manifests, checkpoints and MLflow params)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj
