"""External methods on the leaderboard: ``submissions.yaml`` (beside params.yaml).

``frbench submit --name NAME --set SET --restored DIR`` records a folder of restored images (the
output of a researcher's own code) for one test set; the next ``dvc repro`` scores it under
``evaluate.protocol`` (stage ``submission@NAME-SET``) and the report ranks it beside the suite's
methods. The file is the single record DVC templates its stages from (``vars`` of dvc.yaml)::

    submissions:
      mine-mfr:                      # <name>-<set>: the stage key
        name: mine
        set: mfr
        restored: /abs/path/or/repo/relative/path
        sha256: <folder hash>        # sha256 over "<file name>\\0<file sha256>\\n", sorted by name
        n_files: 24
        files: {00000.png: <sha256>, ...}

The folder is an input: it is only ever read. The scoring stage re-hashes every file and refuses
a folder that changed since ``frbench submit`` (submit again to record the new files), then
copies the files into ``restored/NAME/SET`` (DVC-cached, so the scored images stay with the
results) and evaluates that copy. Provenance: ``external:sha256:<folder hash>``.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from core.errors import FRBenchError

FILE_NAME = "submissions.yaml"
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
HEADER = ("# External methods scored by `dvc repro` (stage submission@<name>-<set>); written by\n"
          "# `frbench submit` (add: --name/--set/--restored; undo: --remove). Edit with the command.\n")


@dataclass
class Submission:
    name: str
    set: str
    restored: str
    sha256: str
    n_files: int
    files: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.set}"

    @property
    def provenance(self) -> str:
        return f"external:sha256:{self.sha256}"

    def to_yaml(self) -> dict:
        return {"name": self.name, "set": self.set, "restored": self.restored,
                "sha256": self.sha256, "n_files": self.n_files, "files": dict(self.files)}


def submissions_path(params_path: str | os.PathLike = "params.yaml") -> Path:
    return Path(params_path).with_name(FILE_NAME)


def folder_hash(files: dict[str, str]) -> str:
    """sha256 over ``<name>\\0<sha256>\\n`` of every (file name, file sha256), sorted by name."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{files[name]}\n".encode())
    return h.hexdigest()


def hash_files(folder: str | os.PathLike) -> dict[str, str]:
    """{file name: sha256} of every image file of ``folder`` (the files the evaluator scores)."""
    from core.imageio import list_images
    from core.manifest import sha256_file
    return {p.name: sha256_file(p) for p in list_images(folder)}


def load_submissions(path: str | os.PathLike, params=None) -> dict[str, Submission]:
    """{key: Submission} from ``path`` ({} when the file is absent). With ``params``, checks each
    entry against them (test set exists, name is not a methods entry)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise FRBenchError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(doc, dict) or set(doc) - {"submissions"}:
        raise FRBenchError(f"{path}: expected one top-level key 'submissions'")
    entries = doc.get("submissions") or {}
    if not isinstance(entries, dict):
        raise FRBenchError(f"{path}: submissions: expected a mapping of <name>-<set> entries")
    out = {}
    for key, e in entries.items():
        where = f"{path}: submissions.{key}"
        if not isinstance(e, dict) or set(e) != {"name", "set", "restored", "sha256", "n_files",
                                                 "files"}:
            raise FRBenchError(f"{where}: expected keys name, set, restored, sha256, n_files, "
                               "files; record entries with `frbench submit`")
        sub = Submission(str(e["name"]), str(e["set"]), str(e["restored"]), str(e["sha256"]),
                         int(e["n_files"]), {str(k): str(v) for k, v in (e["files"] or {}).items()})
        if sub.key != key:
            raise FRBenchError(f"{where}: key must be '{sub.key}' (<name>-<set>)")
        if folder_hash(sub.files) != sub.sha256 or len(sub.files) != sub.n_files:
            raise FRBenchError(f"{where}: sha256/n_files do not match the recorded files; record "
                               "the folder again with `frbench submit`")
        if params is not None:
            check_name(sub.name, sub.set, params, where)
        out[key] = sub
    return out


def check_name(name: str, testset: str, params, where: str = "frbench submit") -> None:
    if not _NAME.match(name):
        raise FRBenchError(f"{where}: name '{name}': use letters, digits and _ only")
    if params.methods is not None and name in params.methods:
        raise FRBenchError(f"{where}: name '{name}' is a methods entry of params.yaml; choose "
                           "another name for the external method")
    if name in ("prior", "dre", "panini_theta"):
        raise FRBenchError(f"{where}: name '{name}' is reserved; choose another")
    sets = params.testsets.sets if params.testsets is not None else {}
    if testset not in sets:
        raise FRBenchError(f"{where}: test set '{testset}' is not under testsets.sets (have: "
                           f"{', '.join(sorted(sets))})")


def save_submissions(path: str | os.PathLike, subs: dict[str, Submission]) -> None:
    """Write ``submissions.yaml`` atomically (entries sorted by key)."""
    path = Path(path)
    doc = {"submissions": {k: subs[k].to_yaml() for k in sorted(subs)}}
    text = HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def stored_path(folder: Path, root: Path) -> str:
    """The folder as recorded: relative to the repo root when inside it (posix), else absolute."""
    folder = folder.resolve()
    try:
        return folder.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(folder)


def check_pairing(folder: Path, gt: Path) -> list[tuple[str, Path, Path]]:
    """The evaluator's pairing (``metrics.evaluate.pair_files``: same message on refusal) plus
    its size rule (restored images at GT size), read from the image headers only."""
    from core.imageio import image_size
    from metrics.evaluate import pair_files
    pairs = pair_files(folder, gt)
    for _, r, g in pairs:
        a, b = image_size(r), image_size(g)
        if a != b:
            raise FRBenchError(f"{r}: size {a[0]}x{a[1]} differs from GT {g.name} "
                               f"{b[0]}x{b[1]}; restored images must be at GT size")
    return pairs


def add(params, params_path, name: str, testset: str, restored: str | os.PathLike,
        root: Optional[Path] = None) -> Submission:
    """Record ``restored`` as the external method ``name`` on ``testset`` (replacing an earlier
    record of the same name and set). Reads the folder only."""
    check_name(name, testset, params)
    folder = Path(restored)
    if not folder.is_dir():
        raise FRBenchError(f"{folder}: --restored must be a folder of restored images")
    gt = Path(params.testsets.out_dir) / testset / "gt"
    if not gt.is_dir():
        raise FRBenchError(f"{gt}: test set '{testset}' is not built; run `dvc repro "
                           f"testsets@{testset}` (or `make repro`) first")
    check_pairing(folder, gt)
    files = hash_files(folder)
    root = Path(root) if root is not None else Path(params_path).resolve().parent
    sub = Submission(name, testset, stored_path(folder, root), folder_hash(files), len(files), files)
    path = submissions_path(params_path)
    subs = load_submissions(path, params)
    subs[sub.key] = sub
    save_submissions(path, subs)
    return sub


def remove(params_path, name: str, testset: Optional[str] = None) -> list[str]:
    """Drop the records of ``name`` (on ``testset``, or on every set); returns the removed keys."""
    path = submissions_path(params_path)
    subs = load_submissions(path)
    gone = [k for k, s in subs.items() if s.name == name and (testset is None or s.set == testset)]
    if not gone:
        have = ", ".join(sorted(subs)) or "none"
        raise FRBenchError(f"{path}: no submission '{name}'"
                           + (f" on set '{testset}'" if testset else "") + f" (have: {have})")
    for k in gone:
        del subs[k]
    save_submissions(path, subs)
    return gone


def copy_verified(sub: Submission, dest: str | os.PathLike, root: Path = Path(".")) -> int:
    """Copy the submitted files into ``dest`` (atomic folder), checking each against its
    recorded sha256; FRBenchError if the folder changed since ``frbench submit``."""
    from core.imageio import list_images
    from core.outputs import atomic_dir

    src = Path(sub.restored)
    if not src.is_absolute():
        src = root / src
    if not src.is_dir():
        raise FRBenchError(f"{src}: submitted folder of '{sub.key}' is gone; restore it or "
                           f"`frbench submit --remove --name {sub.name} --set {sub.set}`")
    now = {p.name: p for p in list_images(src)}
    if set(now) != set(sub.files):
        extra, missing = sorted(set(now) - set(sub.files)), sorted(set(sub.files) - set(now))
        raise FRBenchError(f"{src}: files changed since `frbench submit` (new: {extra[:5]}, "
                           f"missing: {missing[:5]}); run `frbench submit` again to record them")
    with atomic_dir(dest, "restored", inputs=[src]) as tmp:
        for fname in sorted(now):
            data = now[fname].read_bytes()
            if hashlib.sha256(data).hexdigest() != sub.files[fname]:
                raise FRBenchError(f"{now[fname]}: content changed since `frbench submit`; run "
                                   "`frbench submit` again to record the new files")
            (tmp / fname).write_bytes(data)
    return len(now)
