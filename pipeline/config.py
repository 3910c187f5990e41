"""params.yaml -> dataclasses that reject unknown keys.

params.yaml is the single source of truth: no defaults in code that disagree with it. Each package
owns the dataclasses of its sections (``degradations/config.py``, ``metrics/config.py``,
``methods/config.py``); this module holds the generic strict loader and the root ``Params``.

Loader rules (``build``): every key must be a field (unknown -> FRBenchError naming the dotted
key and the allowed ones); fields without a default are required; ints are accepted for float
fields; nested dataclasses, ``list[T]``, ``dict[str, T]``, ``Optional[T]`` and ``Literal[...]``
are checked recursively. A field may carry ``metadata={"parse": fn}`` with ``fn(value, where)``
for polymorphic sections (e.g. one dataclass per method architecture).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from pipeline.errors import FRBenchError

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


# --------------------------------------------------------------------------------------------
# Sections owned by this package (pipeline): MLflow, reports, regression checks.

@dataclass
class MLflowConfig:
    enabled: bool
    tracking_uri: str
    experiment: str


@dataclass
class ReportConfig:
    """``frbench report``: ``out_dir`` (reports/), ``published_dir`` (published numbers as data),
    ``samples`` images per test set in the HTML grids, ``grid_px`` thumbnail side there."""
    out_dir: str
    published_dir: str = "reports/published"
    samples: int = 4
    grid_px: int = 96


@dataclass
class RegressionRule:
    better: Literal["higher", "lower"]
    atol: float = 0.0
    rtol: float = 0.0


@dataclass
class RegressionConfig:
    """``frbench compare``: ``baseline`` git revision, ``metrics_file`` compared with
    ``dvc metrics diff``, ``rules`` per metric name (a key of the flattened metric path's last
    part; ``deg_*`` style prefixes match with a trailing ``*``). A metric is a regression when it
    moved in the worse direction by more than ``atol`` AND more than ``rtol`` x |old|."""
    baseline: str
    rules: dict[str, RegressionRule]
    metrics_file: str = "reports/metrics.json"
    out: str = "reports/regression.md"


@dataclass
class PipelineConfig:
    """What dvc.yaml iterates over. ``train``: the ``train@<m>`` stages (methods entries that
    are trained; entries not listed stay defined but are not run). ``methods`` x ``testsets``:
    the restore_eval matrix (methods restoring the LQ-at-half-size sets); ``sr_methods`` x
    ``sr_testsets``: the restore_eval_sr matrix (super-resolution methods on the SR sets);
    ``ablations`` x ``ablation_testsets``: the ablation matrix; ``theta_method`` on
    ``theta_testset``: Table 4. ``launcher``: how training is started (``python -m pipeline.cli``
    or ``torchrun --nproc_per_node=N -m pipeline.cli``)."""
    train: list[str]
    methods: list[str]
    testsets: list[str]
    sr_methods: list[str]
    sr_testsets: list[str]
    ablations: list[str]
    ablation_testsets: list[str]
    launcher: str
    theta_method: str = "panini"
    theta_testset: str = "ladder"

    def cells(self) -> list[tuple[str, str]]:
        """(method, set) of every matrix cell: main, SR, then ablations."""
        out = [(m, s) for m in self.methods for s in self.testsets]
        out += [(m, s) for m in self.sr_methods for s in self.sr_testsets]
        out += [(m, s) for m in self.ablations for s in self.ablation_testsets]
        return out

    def stage_of(self, method: str, testset: str) -> str:
        """The DVC stage (``restore_eval@m-s`` ...) that produces the cell (method, testset)."""
        for stage, ms, ss in (("restore_eval", self.methods, self.testsets),
                              ("restore_eval_sr", self.sr_methods, self.sr_testsets),
                              ("ablation", self.ablations, self.ablation_testsets)):
            if method in ms and testset in ss:
                return f"{stage}@{method}-{testset}"
        raise FRBenchError(f"params: pipeline: ({method}, {testset}) is not a cell of any matrix")

    def validate(self, where: str) -> None:
        for name in ("train", "methods", "testsets", "sr_methods", "sr_testsets", "ablations",
                     "ablation_testsets"):
            if not getattr(self, name):
                raise FRBenchError(f"params: {where}.{name}: empty (a DVC matrix needs at least "
                                   "one entry)")
        cells = self.cells()
        dup = sorted({c for c in cells if cells.count(c) > 1})
        if dup:
            raise FRBenchError(f"params: {where}: cells {dup} come from two matrices (each cell "
                               "must be produced by one stage)")
        both = (set(self.methods) | set(self.sr_methods)) & set(self.ablations)
        if both:
            raise FRBenchError(f"params: {where}: {sorted(both)} listed in both a main matrix and "
                               "ablations")
        untrained = [m for m, _ in cells if m not in self.train] + \
            ([self.theta_method] if self.theta_method not in self.train else [])
        if untrained:
            raise FRBenchError(f"params: {where}.train: add {sorted(set(untrained))} (evaluated "
                               "by the matrices, so they must be trained)")


# --------------------------------------------------------------------------------------------

def _sections():
    # Imported here so that loading params never imports torch.
    from degradations.config import DataConfig, TestsetsConfig
    from metrics.config import EvaluateConfig, WeightsConfig
    from methods.config import parse_methods, PriorConfig, DREConfig, TrainConfig
    return DataConfig, TestsetsConfig, EvaluateConfig, WeightsConfig, parse_methods, PriorConfig, \
        DREConfig, TrainConfig


def load_params(path: str | Path = "params.yaml") -> "Params":
    """Load and validate params.yaml (FRBenchError on any unknown key or bad value)."""
    return build(Params, read_yaml(path))


def _lazy(name: str):
    def parse(value, where):
        DataConfig, TestsetsConfig, EvaluateConfig, WeightsConfig, parse_methods, PriorConfig, \
            DREConfig, TrainConfig = _sections()
        table = {"data": DataConfig, "testsets": TestsetsConfig, "evaluate": EvaluateConfig,
                 "weights": WeightsConfig, "prior": PriorConfig, "dre": DREConfig,
                 "train": TrainConfig}
        if name == "methods":
            return parse_methods(value, where)
        return build(table[name], value, where)
    return field(default=None, metadata={"parse": parse})


@dataclass
class Params:
    """Root of params.yaml. ``profile`` names the tier (``builtin`` or ``paper``)."""
    profile: Literal["builtin", "builtin_long", "paper"]
    seed: int
    device: str = "cpu"
    data: Any = _lazy("data")
    testsets: Any = _lazy("testsets")
    weights: Any = _lazy("weights")
    evaluate: Any = _lazy("evaluate")
    prior: Any = _lazy("prior")
    dre: Any = _lazy("dre")
    train: Any = _lazy("train")
    methods: Any = _lazy("methods")
    mlflow: Optional[MLflowConfig] = None
    report: Optional[ReportConfig] = None
    regression: Optional[RegressionConfig] = None
    pipeline: Optional[PipelineConfig] = None

    def validate(self, where: str) -> None:
        pl = self.pipeline
        if pl is None:
            return
        known_m = set(self.methods or {})
        for name in list(pl.train) + [m for m, _ in pl.cells()] + [pl.theta_method]:
            if self.methods is not None and name not in known_m:
                raise FRBenchError(f"params: pipeline: method '{name}' has no entry under "
                                   f"'methods' (have: {', '.join(sorted(known_m))})")
        known_s = set(self.testsets.sets) if self.testsets is not None else None
        for s in [s for _, s in pl.cells()] + [pl.theta_testset]:
            if known_s is not None and s not in known_s:
                raise FRBenchError(f"params: pipeline: test set '{s}' has no entry under "
                                   f"'testsets.sets' (have: {', '.join(sorted(known_s))})")
