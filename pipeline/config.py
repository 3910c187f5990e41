"""params.yaml -> dataclasses that reject unknown keys: the root ``Params`` and the pipeline's sections.

params.yaml is the single source of truth: no defaults in code that disagree with it. Each package
owns the dataclasses of its sections (``degradations/config.py``, ``metrics/config.py``,
``methods/config.py``); the generic strict loader (``build``, ``read_yaml``, ``to_dict``) is
``core/config.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from core.config import build, read_yaml, to_dict  # noqa: F401  (re-exported for the pipeline)
from core.errors import FRBenchError
from core.numerics import NumericsConfig


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
    moved in the worse direction by more than ``atol`` AND more than ``rtol`` x |old| AND, where
    per-image values exist at both revisions, the 95% paired-bootstrap CI of the mean per-image
    difference (``bootstrap_samples`` resamples) lies on the worse side of zero."""
    baseline: str
    rules: dict[str, RegressionRule]
    metrics_file: str = "reports/metrics.json"
    out: str = "reports/regression.md"
    bootstrap_samples: int = 2000


@dataclass
class ImportSpec:
    """A methods entry whose checkpoint is a released file (``frbench import``, stage
    ``import@<name>``): ``format`` (methods/released), ``file`` (its name in
    ``metrics.weights.KNOWN``, found by the weight resolver: ``weights.paths`` /
    ``weights.search_dirs`` / the torch hub cache, with its sha256 where published), ``extras``
    ({role: KNOWN name} of further files, e.g. GPEN's ``d``)."""
    format: str
    file: str
    extras: dict[str, str] = field(default_factory=dict)


@dataclass
class PipelineConfig:
    """What dvc.yaml iterates over. ``pretrain``: the ``pretrain@prior`` / ``pretrain@dre``
    stages (``prior.source: released`` imports the prior there instead of training it).
    ``train``: the ``train@<m>`` stages (methods entries that are trained; entries not listed
    stay defined but are not run). ``imported``: the ``import@<m>`` stages (entries whose
    checkpoints are released files). ``methods`` x ``testsets``: the main matrix of cells
    (methods restoring the LQ-at-half-size sets); ``sr_methods`` x ``sr_testsets``: the SR
    matrix (super-resolution methods on the SR sets); ``ablations`` x ``ablation_testsets``: the
    ablation matrix; ``theta``: {method: test set} of Table 4 (at most one; empty = no theta
    stage). A matrix may be empty; every evaluated method is trained or imported, and every
    trained or imported one is evaluated. ``launcher``: how training is started (``python -m pipeline.cli``
    or ``torchrun --nproc_per_node=N -m pipeline.cli``).

    DVC runs all the cells of one method in one process (stage ``eval@<m>`` per ``train`` entry,
    ``eval_imported@<m>`` per ``imported`` entry; ``sets_of(m)`` lists its sets). External
    methods recorded with ``frbench submit`` (``submissions.yaml`` beside params.yaml, attached
    by ``load_params``) are cells too, after the matrices (stage ``submission@<name>-<set>``)."""
    train: list[str]
    methods: list[str]
    testsets: list[str]
    sr_methods: list[str]
    sr_testsets: list[str]
    ablations: list[str]
    ablation_testsets: list[str]
    launcher: str
    theta: dict[str, str] = field(default_factory=lambda: {"panini": "ladder"})
    pretrain: list[Literal["prior", "dre"]] = field(default_factory=lambda: ["prior", "dre"])
    imported: dict[str, ImportSpec] = field(default_factory=dict)

    @property
    def theta_method(self) -> Optional[str]:
        return next(iter(self.theta), None)

    @property
    def theta_testset(self) -> Optional[str]:
        return next(iter(self.theta.values()), None)

    def __post_init__(self):
        self._external: list[tuple[str, str]] = []   # (name, set) of submissions; see attach_external

    def suite_cells(self) -> list[tuple[str, str]]:
        """(method, set) of every matrix cell: main, SR, then ablations."""
        out = [(m, s) for m in self.methods for s in self.testsets]
        out += [(m, s) for m in self.sr_methods for s in self.sr_testsets]
        out += [(m, s) for m in self.ablations for s in self.ablation_testsets]
        return out

    def cells(self) -> list[tuple[str, str]]:
        """Every cell the report reads: the matrices' (``suite_cells``), then the submissions."""
        return self.suite_cells() + list(self._external)

    def attach_external(self, cells: list[tuple[str, str]]) -> None:
        """Add the (name, set) cells of external submissions (``submissions.yaml``)."""
        self._external = list(cells)

    def is_external(self, method: str, testset: str) -> bool:
        return (method, testset) in self._external

    def sets_of(self, method: str) -> list[str]:
        """The test sets the ``eval@<method>`` stage restores and scores, in cell order."""
        return [s for m, s in self.suite_cells() if m == method]

    def stage_of(self, method: str, testset: str) -> str:
        """The DVC stage that produces the cell: ``eval@<m>`` (trained), ``eval_imported@<m>``
        (imported) or ``submission@<name>-<set>``."""
        if self.is_external(method, testset):
            return f"submission@{method}-{testset}"
        if (method, testset) in self.suite_cells():
            return f"eval_imported@{method}" if method in self.imported else f"eval@{method}"
        raise FRBenchError(f"params: pipeline: ({method}, {testset}) is not a cell of any matrix")

    def validate(self, where: str) -> None:
        check_launcher(self.launcher, f"{where}.launcher")
        cells = self.suite_cells()
        if not cells:
            raise FRBenchError(f"params: {where}: no cell to evaluate (methods x testsets, "
                               "sr_methods x sr_testsets and ablations x ablation_testsets are "
                               "all empty)")
        dup = sorted({c for c in cells if cells.count(c) > 1})
        if dup:
            raise FRBenchError(f"params: {where}: cells {dup} come from two matrices (each cell "
                               "must be produced by one stage)")
        both = (set(self.methods) | set(self.sr_methods)) & set(self.ablations)
        if both:
            raise FRBenchError(f"params: {where}: {sorted(both)} listed in both a main matrix and "
                               "ablations")
        if len(self.theta) > 1:
            raise FRBenchError(f"params: {where}.theta: at most one method (results/"
                               "panini_theta.json)")
        twice = sorted(set(self.train) & set(self.imported))
        if twice:
            raise FRBenchError(f"params: {where}: {twice} both trained and imported; keep each "
                               "in one of train / imported")
        have = set(self.train) | set(self.imported)
        untrained = [m for m, _ in cells if m not in have] + \
            [m for m in self.theta if m not in have]
        if untrained:
            raise FRBenchError(f"params: {where}.train: add {sorted(set(untrained))} (evaluated "
                               "by the matrices, so they must be trained or imported)")
        if self.train and set(self.pretrain) != {"prior", "dre"}:
            raise FRBenchError(f"params: {where}.pretrain: the train@ stages need both prior and "
                               "dre (train is not empty)")
        idle = [m for m in list(self.train) + list(self.imported) if not self.sets_of(m)]
        if idle:
            raise FRBenchError(f"params: {where}: {idle} are trained or imported but in no matrix "
                               "(each gets an eval stage); add them to methods, sr_methods or "
                               "ablations, or drop them from train / imported")


def launcher_processes(launcher: str) -> int:
    """Training processes started by ``pipeline.launcher``: ``--nproc_per_node`` (or
    ``--nproc-per-node``) x ``--nnodes`` of a torchrun/torch.distributed command, else 1."""
    def opt(name: str) -> int:
        m = re.search(rf"--{name}[= ]+(\d+)", launcher)
        return int(m.group(1)) if m else 1
    return opt("nproc[_-]per[_-]node") * opt("nnodes")


def global_batches(params: "Params") -> dict[str, int]:
    """``{"prior": B, "dre": B, <trained method>: B}``: the global batch of each training stage
    of ``pipeline.train`` (``batch_size`` is the global batch, split across the processes)."""
    out = {}
    if params.prior is not None:
        out["prior"] = int(params.prior.batch_size)
    if params.dre is not None:
        out["dre"] = int(params.dre.batch_size)
    for name in (params.pipeline.train if params.pipeline else []):
        b = getattr((params.methods or {}).get(name), "batch_size", None)
        if b is not None:  # bicubic: nothing to train
            out[name] = int(b)
    return out


_LAUNCH_WORD = re.compile(r"^[A-Za-z0-9_./=:,+@%-]+$")


def check_launcher(launcher: str, where: str = "pipeline.launcher") -> None:
    """``pipeline.launcher`` is pasted into the shell command DVC runs for each training stage,
    so it must be plain words separated by single spaces (letters, digits and ``_ . / = : , + @
    % -``: no quotes, ``;``, ``|``, ``&``, ``$``, backticks, redirections or globs) and end
    with ``-m pipeline.cli``."""
    words = launcher.split(" ")
    if not all(_LAUNCH_WORD.match(w) for w in words) or words[-2:] != ["-m", "pipeline.cli"]:
        raise FRBenchError(
            f"params: {where}: {launcher!r} is not a launcher: use plain words (letters, digits, "
            "_ . / = : , + @ % -) separated by single spaces and ending in '-m pipeline.cli', "
            "e.g. 'python -m pipeline.cli' or 'torchrun --nproc_per_node=8 -m pipeline.cli' "
            "(DVC pastes it into a shell command, so shell syntax is refused)")


# --------------------------------------------------------------------------------------------

def _sections():
    # Imported here so that loading params never imports torch.
    from degradations.config import DataConfig, TestsetsConfig
    from metrics.config import EvaluateConfig, WeightsConfig
    from methods.config import parse_methods, PriorConfig, DREConfig, TrainConfig
    return DataConfig, TestsetsConfig, EvaluateConfig, WeightsConfig, parse_methods, PriorConfig, \
        DREConfig, TrainConfig


def load_params(path: str | Path = "params.yaml") -> "Params":
    """Load and validate params.yaml (FRBenchError on any unknown key or bad value), with the
    external submissions of ``submissions.yaml`` beside it attached to ``pipeline``."""
    params = build(Params, read_yaml(path))
    if params.pipeline is not None:
        from pipeline.submissions import load_submissions, submissions_path
        subs = load_submissions(submissions_path(path), params)
        params.pipeline.attach_external([(e.name, e.set) for e in subs.values()])
    return params


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
    """Root of params.yaml. ``profile`` names the tier (``builtin``, ``builtin_long``,
    ``paper``, or ``released``: the released models, imported, no training)."""
    profile: Literal["builtin", "builtin_long", "paper", "released"]
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
    numerics: Optional[NumericsConfig] = None   # core/numerics.py (read by the entry points)

    def validate(self, where: str) -> None:
        from core.environment import check_device

        if self.seed < 0:
            raise FRBenchError(f"params: seed: must be >= 0, got {self.seed}")
        check_device(self.device, "params: device")
        pl = self.pipeline
        if pl is None:
            return
        known_m = set(self.methods or {})
        for name in list(pl.train) + list(pl.imported) + [m for m, _ in pl.suite_cells()] + \
                list(pl.theta):
            if self.methods is not None and name not in known_m:
                raise FRBenchError(f"params: pipeline: method '{name}' has no entry under "
                                   f"'methods' (have: {', '.join(sorted(known_m))})")
        nproc = launcher_processes(pl.launcher)
        bad = {k: b for k, b in global_batches(self).items() if b % nproc}
        if bad:
            k, b = next(iter(bad.items()))
            key = k if k in ("prior", "dre") else f"methods.{k}"
            raise FRBenchError(f"params: {key}.batch_size: the global batch {b} does not divide "
                               f"by the {nproc} processes of pipeline.launcher ('{pl.launcher}'; "
                               f"also {sorted(bad)}); use a launcher process count that divides "
                               "every batch, or change the batches")
        known_s = set(self.testsets.sets) if self.testsets is not None else None
        for s in [s for _, s in pl.suite_cells()] + list(pl.theta.values()):
            if known_s is not None and s not in known_s:
                raise FRBenchError(f"params: pipeline: test set '{s}' has no entry under "
                                   f"'testsets.sets' (have: {', '.join(sorted(known_s))})")
