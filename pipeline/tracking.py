"""MLflow tracking, optional and imported lazily (telemetry off, sqlite store).

One parent run per ``dvc repro`` (its id is kept in ``.frbench_mlflow_parent`` beside params.yaml,
or passed as ``FRBENCH_MLFLOW_PARENT``), child runs per training and per (method, test set)
evaluation. The parent is lazy: the ``preflight`` stage (run by every ``dvc repro``) only writes
what it will carry (``prepare_parent``, no MLflow import), and the first stage that logs opens it,
so a repro with nothing to do never imports MLflow or opens its store (~8 s). Tags: git commit,
dirty flag, DVC stage, the environment (``env_torch``, ``env_cpu``, ``env_torch_threads``,
``env_gpu``), plus the caller's (protocol, provenance).
Everything here is a no-op when ``mlflow.enabled`` is false or mlflow is not installed, so the
pipeline works without it. Artifact locations in the clone-local store are kept relative
(``mlruns/<experiment>/<run>/artifacts``), so a moved clone keeps its links
(``relativize_artifacts``).

Usage::

    with tracking.run("train", "panini", params=cfg_dict, tags={...}, cfg=params.mlflow) as r:
        r.log_metrics({"loss_g": 0.3}, step=10)
        r.log_artifact("path/to/grid.png")
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator, Optional

from core.environment import environment

log = logging.getLogger(__name__)
PARENT_FILE = Path(".frbench_mlflow_parent")


class _NullRun:
    run_id = None

    def log_metrics(self, metrics: dict, step: Optional[int] = None) -> None:
        pass

    def log_params(self, params: dict) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike, artifact_path: Optional[str] = None) -> None:
        pass

    def log_table(self, df, artifact_file: str) -> None:
        pass

    def set_tags(self, tags: dict) -> None:
        pass


class _MlflowRun(_NullRun):
    def __init__(self, mlflow, run):
        self._m = mlflow
        self.run_id = run.info.run_id

    def log_metrics(self, metrics, step=None):
        clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v
                 and abs(float(v)) != float("inf")}
        if clean:
            self._m.log_metrics(clean, step=step)

    def log_params(self, params):
        flat = _flatten(params)
        for i in range(0, len(flat), 90):  # mlflow caps a batch at 100 params
            self._m.log_params(dict(list(flat.items())[i:i + 90]))

    def log_artifact(self, path, artifact_path=None):
        self._m.log_artifact(str(path), artifact_path=artifact_path)

    def log_table(self, df, artifact_file):
        self._m.log_table(df, artifact_file=artifact_file)

    def set_tags(self, tags):
        self._m.set_tags({k: str(v) for k, v in tags.items()})


def _flatten(d: Any, prefix: str = "") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = str(d)[:500]
    return out


def git_state() -> dict:
    def _git(*a):
        try:
            return subprocess.run(["git", *a], capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    commit = _git("rev-parse", "HEAD")
    # files the pipeline itself rewrites during a repro (dvc.lock, committed reports) do not
    # make the code or params dirty
    status = _git("status", "--porcelain", "--untracked-files=no")  # "XY path" (stripped)
    changed = [ln[2:].strip() for ln in status.splitlines()]
    dirty = any(not (f == "dvc.lock" or f.startswith("reports/")) for f in changed)
    return {"git_commit": commit or "unknown", "git_dirty": str(dirty).lower()}


def _import_mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_DISABLE_AGENT_HINT", "true")
    try:
        import mlflow  # noqa: WPS433 (lazy on purpose: ~2 s import)
    except ImportError:
        return None
    return mlflow


def _relative_location(loc: Optional[str]) -> Optional[str]:
    """``file:///any/clone/mlruns/<exp>/...`` or ``/any/clone/mlruns/<exp>/...`` ->
    ``mlruns/<exp>/...``; anything else unchanged."""
    if not loc:
        return loc
    path = loc[len("file://"):] if loc.startswith("file://") else loc
    if not path.startswith("/"):
        return loc
    cut = path.rfind("/mlruns/")
    rest = path[cut + len("/mlruns/"):] if cut >= 0 else ""
    if cut < 0 or not rest.split("/", 1)[0].isdigit():
        return loc
    return "mlruns/" + rest


def relativize_artifacts(cfg) -> int:
    """Make the artifact locations of a clone-local sqlite store (``sqlite:///<relative path>``,
    artifacts in ``./mlruns``) relative to the clone, so a moved or copied clone keeps its
    links: MLflow itself stores them as absolute ``file://`` URIs. Relative locations resolve
    against the working directory, which is the clone root for the DVC stages and for
    ``mlflow ui`` started there. Returns the number of rows rewritten."""
    import sqlite3
    uri = getattr(cfg, "tracking_uri", "") or ""
    if not uri.startswith("sqlite:///"):
        return 0
    db = uri[len("sqlite:///"):]
    if not db or Path(db).is_absolute() or not Path(db).is_file():
        return 0
    n = 0
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con, con:
        for table, key, col in (("experiments", "experiment_id", "artifact_location"),
                                ("runs", "run_uuid", "artifact_uri")):
            try:
                rows = con.execute(f"SELECT {key}, {col} FROM {table}").fetchall()
            except sqlite3.Error:  # schema not created yet
                continue
            for k, loc in rows:
                new = _relative_location(loc)
                if new != loc:
                    con.execute(f"UPDATE {table} SET {col} = ? WHERE {key} = ?", (new, k))
                    n += 1
    return n


def _use_experiment(mlflow, cfg) -> None:
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    try:
        relativize_artifacts(cfg)
    except Exception as e:  # noqa: BLE001 (links are a convenience; never break a stage)
        log.warning("mlflow: could not make artifact locations relative: %s", e)


def enabled(cfg) -> bool:
    return bool(cfg is not None and getattr(cfg, "enabled", False)
                and os.environ.get("FRBENCH_MLFLOW", "1") != "0")


def parent_run_id(cfg=None) -> Optional[str]:
    """The repro's parent run id; a pending parent (``prepare_parent``) is opened now when
    ``cfg`` (the mlflow section) is given, else None."""
    rid = os.environ.get("FRBENCH_MLFLOW_PARENT")
    if rid:
        return rid
    if not PARENT_FILE.is_file():
        return None
    text = PARENT_FILE.read_text().strip()
    if not text.startswith("{"):
        return text or None
    return _open_pending(cfg) if cfg is not None else None


def _write_parent_file(text: str) -> None:
    tmp = PARENT_FILE.with_name(PARENT_FILE.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, PARENT_FILE)


def _open_pending(cfg) -> Optional[str]:
    """Open the pending parent run recorded by ``prepare_parent`` (once: under a file lock, the
    first caller opens it and writes its id for the others)."""
    import fcntl
    import json

    with open(PARENT_FILE.with_name(PARENT_FILE.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = PARENT_FILE.read_text().strip() if PARENT_FILE.is_file() else ""
        if not text.startswith("{"):
            return text or None
        mlflow = _import_mlflow()
        if mlflow is None:
            return None
        return _open_parent(mlflow, cfg, json.loads(text))


@contextlib.contextmanager
def run(kind: str, name: str, *, cfg, params: Optional[dict] = None,
        tags: Optional[dict] = None, parent: bool = True) -> Iterator[_NullRun]:
    """A child MLflow run (under the repro's parent run when one exists), or a no-op."""
    if not enabled(cfg):
        yield _NullRun()
        return
    mlflow = _import_mlflow()
    if mlflow is None:
        log.warning("mlflow not installed; tracking disabled")
        yield _NullRun()
        return
    _use_experiment(mlflow, cfg)
    all_tags = {"kind": kind, **git_state(), **{f"env_{k}": v for k, v in environment().items()},
                "dvc_stage": os.environ.get("DVC_STAGE", ""),
                "dvc_exp": os.environ.get("DVC_EXP_NAME", ""), **(tags or {})}
    pid = parent_run_id(cfg) if parent else None
    kwargs = {"run_name": f"{kind}:{name}", "tags": {k: str(v) for k, v in all_tags.items()}}
    if pid:
        kwargs["parent_run_id"] = pid
    try:
        active = mlflow.start_run(**kwargs)
    except Exception as e:  # a stale parent id must not break the stage
        log.warning("mlflow start_run failed (%s); retrying without parent", e)
        kwargs.pop("parent_run_id", None)
        active = mlflow.start_run(**kwargs)
    with active as r:
        wrapped = _MlflowRun(mlflow, r)
        if params:
            wrapped.log_params(params)
        yield wrapped


class TrainTracker:
    """The trainer's logger (``methods.trainer.TrainLogger``) for the pipeline: each training
    is an MLflow child run ``train:<name>`` (a no-op when MLflow is off)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def run(self, name: str, params: dict, tags: dict):
        return run("train", name, cfg=self.cfg, params=params, tags=tags)


def _parent_spec(params) -> dict:
    from pipeline.config import to_dict
    tags = {"kind": "repro", **git_state(), "profile": params.profile,
            "protocol": getattr(params.evaluate, "protocol", ""),
            "dvc_exp": os.environ.get("DVC_EXP_NAME", "")}
    return {"run_name": f"repro:{params.profile}", "tags": {k: str(v) for k, v in tags.items()},
            "params": {k: to_dict(getattr(params, k)) for k in ("seed", "device", "pipeline",
                                                                 "evaluate")
                       if getattr(params, k, None) is not None}}


def prepare_parent(params) -> None:
    """Start a repro's bookkeeping without MLflow: record the parent run's name, tags and params
    in ``.frbench_mlflow_parent``; the first stage that logs opens the run (``parent_run_id``).
    Removes the file when MLflow is off."""
    import json
    if not enabled(getattr(params, "mlflow", None)):
        PARENT_FILE.unlink(missing_ok=True)
        return
    _write_parent_file(json.dumps({"pending": True, **_parent_spec(params)}, sort_keys=True))


def start_parent(params) -> Optional[str]:
    """Open (and close) the parent run of one ``dvc repro``: params, tags (git commit, dirty
    flag, profile, protocol); its id goes to ``.frbench_mlflow_parent`` so the stages' child
    runs attach to it (``parent_run_id``). Returns the id, or None when MLflow is off."""
    cfg = getattr(params, "mlflow", None)
    if not enabled(cfg):
        PARENT_FILE.unlink(missing_ok=True)
        return None
    mlflow = _import_mlflow()
    if mlflow is None:
        return None
    return _open_parent(mlflow, cfg, _parent_spec(params))


def _open_parent(mlflow, cfg, spec: dict) -> str:
    """Open and close the parent run described by ``spec`` (run_name, tags, params); its id
    goes to the parent file. Returns the id."""
    _use_experiment(mlflow, cfg)
    with mlflow.start_run(run_name=spec["run_name"], tags=spec["tags"]) as r:
        _MlflowRun(mlflow, r).log_params(spec["params"])
        rid = r.info.run_id
    _write_parent_file(rid)
    log.info("mlflow parent run %s", rid)
    return rid


def log_to_parent(params, paths: list, metrics: Optional[dict] = None) -> None:
    """Attach report files (and headline metrics) to the repro's parent run, if any."""
    cfg = getattr(params, "mlflow", None)
    if not enabled(cfg):
        return
    pid = parent_run_id(cfg)
    if not pid:
        return
    mlflow = _import_mlflow()
    if mlflow is None:
        return
    mlflow.set_tracking_uri(cfg.tracking_uri)
    client = mlflow.tracking.MlflowClient()
    try:
        for p in paths:
            if Path(p).exists():
                client.log_artifact(pid, str(p), artifact_path="reports")
        for k, v in (metrics or {}).items():
            if v is not None and v == v and abs(float(v)) != float("inf"):
                client.log_metric(pid, k, float(v))
    except Exception as e:  # reports stand on their own; MLflow is a viewer
        log.warning("mlflow: could not log to parent run %s: %s", pid, e)
