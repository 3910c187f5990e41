"""Output folders: which existing folder a command may replace, and writing one atomically.

The rules (README "What the suite promises"):

- Every folder the suite writes holds a marker file ``.frbench-output.json``
  (``{"format": "frbench-output/1", "kind": KIND}``; no time stamp, so outputs stay
  byte-reproducible). Kinds: ``hq`` (synth-faces, HQ imports), ``testset``, ``restored``,
  ``evaluation``, ``checkpoint``. Folders written by earlier versions are recognised by their
  own records (a test-set / face-set manifest, an evaluation summary, a checkpoint folder).
- A command writes its output folder ``out`` only if ``out`` does not exist, is empty, or the
  suite made it as the same kind (a rerun). A folder the suite made as another kind is replaced
  only with ``--force``; a folder the suite did not make is never replaced, ``--force`` or not.
- ``out`` must never be an input of the same command, contain an input, or lie inside one.
- Anything else is an ``FRBenchError`` (exit 2) naming the folder and the way out, raised
  before any work is done.

Temporary names are ``.<name>.tmp-<pid>@<host>-<random>`` beside ``out``; an interrupted
command leaves one behind, and the next command writing beside it removes it once its owning
process (same host, pid not running) is gone. Leftovers of older versions (no pid in the name)
are removed when untouched for ``LEGACY_STALE_S`` seconds.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional

from core.errors import FRBenchError

log = logging.getLogger(__name__)

MARKER = ".frbench-output.json"
MARKER_FORMAT = "frbench-output/1"
KINDS = ("hq", "testset", "restored", "evaluation", "checkpoint", "report", "output")
LEGACY_STALE_S = 24 * 3600


# ------------------------------------------------------------------------------------------
# what made a folder

def write_marker(folder: str | os.PathLike, kind: str) -> None:
    """Mark ``folder`` as made by the suite (deterministic bytes)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    Path(folder, MARKER).write_text(
        json.dumps({"format": MARKER_FORMAT, "kind": kind}, sort_keys=True) + "\n",
        encoding="utf-8")


def _json(path: Path) -> Optional[dict]:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


_LEGACY_MANIFEST_KINDS = {"testset": "testset", "synthfaces": "hq", "folder": "hq"}
_CHECKPOINT_NAMES = {"model.pt", "model.partial.pt", "train_log.json", "samples"}


def made_by_suite(folder: str | os.PathLike) -> Optional[str]:
    """The kind of output the suite wrote into ``folder``, or None if it did not make it."""
    folder = Path(folder)
    m = _json(folder / MARKER)
    if m is not None and m.get("format") == MARKER_FORMAT and m.get("kind") in KINDS:
        return m["kind"]
    # folders written before the marker existed: their own records say what they are
    man = _json(folder / "manifest.json")
    if man is not None and str(man.get("suite_version", "")).startswith("frbench-") and \
            man.get("kind") in _LEGACY_MANIFEST_KINDS:
        return _LEGACY_MANIFEST_KINDS[man["kind"]]
    summ = _json(folder / "summary.json")
    if summ is not None and {"protocol", "provenance", "comparable_with_published"} <= set(summ) \
            and (folder / "per_image.csv").is_file():
        return "evaluation"
    names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    tlog = _json(folder / "train_log.json")
    if names and names <= _CHECKPOINT_NAMES and tlog is not None and \
            {"method", "kind", "total_steps"} <= set(tlog):
        return "checkpoint"
    return None


# ------------------------------------------------------------------------------------------
# inputs

def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(p))))


def _within(a: Path, b: Path) -> bool:
    """a == b or a lies inside b (both resolved)."""
    return a == b or b in a.parents


def check_not_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                    what: str = "output folder") -> None:
    """FRBenchError if ``out`` is an input, contains one, or lies inside one."""
    ro = _real(out)
    for inp in inputs:
        if inp is None:
            continue
        ri = _real(inp)
        if ro == ri:
            raise FRBenchError(f"{out}: the {what} is also an input of this command ({inp}); "
                               "write the output somewhere else")
        if ri in ro.parents:
            raise FRBenchError(f"{out}: the {what} lies inside the input {inp}; write the "
                               "output somewhere else")
        if ro in ri.parents:
            raise FRBenchError(f"{out}: the {what} contains the input {inp}; replacing it would "
                               "delete the input; write the output somewhere else")


# ------------------------------------------------------------------------------------------
# the rule

def check_output_dir(out: str | os.PathLike, kind: str,
                     inputs: Iterable[str | os.PathLike | None] = (), force: bool = False,
                     replace: bool = True) -> Path:
    """Check that ``out`` may be (re)written as an output of ``kind`` (module doc); returns it.

    ``replace=False`` refuses any existing non-empty folder (``--no-overwrite`` style callers).
    """
    out = Path(out)
    check_not_input(out, inputs)
    if out.is_symlink():
        raise FRBenchError(f"{out}: is a symbolic link; give the real folder as the output")
    if not out.exists():
        return out
    if not out.is_dir():
        raise FRBenchError(f"{out}: exists and is not a folder; choose another output path")
    if not any(True for p in out.iterdir() if not _is_temp_name(p.name)):
        return out
    if not replace:
        raise FRBenchError(f"{out}: already exists; remove it or choose another output folder")
    have = made_by_suite(out)
    if have is None:
        raise FRBenchError(f"{out}: exists and was not made by frbench (no {MARKER} inside); "
                           "it is never replaced, even with --force: choose a new output folder "
                           "or move it away yourself")
    if have != kind and not force:
        raise FRBenchError(f"{out}: holds a frbench {have} output, not a {kind} output; "
                           "choose another folder, or pass --force to replace it")
    return out


# ------------------------------------------------------------------------------------------
# temporary names and stale leftovers

def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old)-(?:(?P<pid>\d+)@(?P<host>[0-9a-f]{6})-"
                   r".*|(?P<legacy>[^@]*))$")


def _is_temp_name(name: str) -> bool:
    return _TEMP.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError as e:
        return e.errno != errno.ESRCH
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        try:
            p.unlink()
        except OSError:
            pass


def clean_stale(parent: str | os.PathLike, name: str) -> list[Path]:
    """Remove the leftovers of interrupted writers of ``parent/name``: temporary folders and
    files ``.<name>.tmp-...`` / ``.<name>.old-...`` whose owning process (on this host) is
    gone. A leftover ``.old`` folder is moved back to ``name`` when ``name`` is missing (the
    writer died between its two renames). Returns what was removed or restored."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    host, now, done = _host_tag(), time.time(), []
    for p in parent.iterdir():
        m = _TEMP.match(p.name)
        if m is None or m.group("name") != name:
            continue
        if m.group("pid") is not None:
            if m.group("host") != host or _pid_alive(int(m.group("pid"))):
                continue
        else:  # an older version's name: pid unknown (or .old-<pid> without host)
            legacy = m.group("legacy") or ""
            if legacy.isdigit() and m.group("what") == "old":
                if _pid_alive(int(legacy)):
                    continue
            else:
                try:
                    age = now - p.lstat().st_mtime
                except OSError:
                    continue
                if age < LEGACY_STALE_S:
                    continue
        target = parent / name
        if m.group("what") == "old" and not target.exists() and p.is_dir():
            os.replace(p, target)
            log.warning("%s: restored from %s (a writer was interrupted while replacing it)",
                        target, p.name)
        else:
            _remove(p)
            log.info("removed stale leftover %s", p)
        done.append(p)
    return done


def temp_name(path: str | os.PathLike, what: str = "tmp") -> Path:
    """``.<name>.<what>-<pid>@<host>-<random>`` beside ``path`` (recognised by clean_stale)."""
    path = Path(path)
    rand = os.urandom(4).hex()
    return path.with_name(f".{path.name}.{what}-{os.getpid()}@{_host_tag()}-{rand}")


# ------------------------------------------------------------------------------------------
# writers

@contextmanager
def atomic_dir(out: str | os.PathLike, kind: str = "output",
               inputs: Iterable[str | os.PathLike | None] = (), force: bool = False,
               overwrite: bool = True) -> Iterator[Path]:
    """Write a whole output folder under a temporary name and rename it on success.

    ``check_output_dir`` decides first whether ``out`` may be written (``kind``, ``inputs``,
    ``force``; ``overwrite=False`` refuses any existing folder). The block fills the yielded
    temporary folder; the marker is added and the folder renamed over ``out`` at the end. An
    exception (or Ctrl-C) inside the block removes the temporary folder, so an interrupted run
    leaves nothing that looks finished; an existing ``out`` is replaced only on success.
    """
    out = Path(out)
    inputs = list(inputs)
    check_output_dir(out, kind, inputs, force, replace=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent, out.name)
    tmp = temp_name(out)
    tmp.mkdir()
    try:
        yield tmp
        write_marker(tmp, kind)
        # the block may have run long: check again right before replacing anything
        check_output_dir(out, kind, inputs, force, replace=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = temp_name(out, "old")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def check_files_dir(out: str | os.PathLike, own_files: Iterable[str],
                    inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """For writers that put named files into a folder without replacing it (the report): the
    folder must not be an input or lie inside one (containing one is fine: nothing is deleted),
    and if it exists and holds anything, it must already hold one of ``own_files`` (an earlier
    run's output) or frbench's marker. Returns it."""
    out = Path(out)
    ro = _real(out)
    for inp in inputs:
        if inp is None:
            continue
        ri = _real(inp)
        if ro == ri or ri in ro.parents:
            raise FRBenchError(f"{out}: the output folder is, or lies inside, the input {inp}; "
                               "write the output somewhere else")
    if out.exists() and not out.is_dir():
        raise FRBenchError(f"{out}: exists and is not a folder; choose another output path")
    if out.is_dir() and any(True for p in out.iterdir() if not _is_temp_name(p.name)) and \
            not any((out / f).exists() for f in (*own_files, MARKER)):
        raise FRBenchError(f"{out}: exists, holds other files and no earlier output of this "
                           "command; choose a new or empty output folder")
    return out


def claim_dir(out: str | os.PathLike, kind: str,
              inputs: Iterable[str | os.PathLike | None] = (), force: bool = False) -> Path:
    """For writers that update a folder in place (training checkpoints): check ``out`` like
    ``atomic_dir`` does, create it and mark it. Returns it."""
    out = Path(out)
    check_output_dir(out, kind, inputs, force)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent, out.name)
    m = _json(out / MARKER)
    if m is None or m.get("kind") != kind:
        write_marker(out, kind)
    return out
