"""``frbench preflight``: the first stage of ``dvc repro``. Checks, before any work, that every
dataset folder, list file, weight file and released model file (``pipeline.imported``,
``prior.source: released``) the current params need exists, and stops with the path and the
fix otherwise (all missing weight/released files and external test-set folders at once). At the built-in profile (synthetic faces, random-init backbones
allowed) there is nothing to find, so it passes. Writes a small deterministic record
(``--out``, default data/preflight.json) that the HQ stages depend on; with ``--start-run`` it
also prepares the repro's MLflow parent run (``tracking.prepare_parent``: opened by the first
stage that logs, so a no-op ``dvc repro`` stays fast).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)

# metric -> weight names it needs (metrics.weights.KNOWN keys), given the protocol
_LPIPS = {"vgg": "vgg16", "alex": "alexnet"}


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--out", default="data/preflight.json", help="record of the checks (default data/preflight.json)")
    p.add_argument("--start-run", action="store_true",
                   help="prepare the MLflow parent run of this repro (when mlflow.enabled; "
                        "opened by the first stage that logs)")


def needed_weights(params) -> list[str]:
    from metrics.protocols import get_protocol
    ev = params.evaluate
    proto = get_protocol(ev.protocol)
    mets = proto.select(ev.metrics)
    names = []
    if "lpips" in mets:
        names.append(_LPIPS[proto.lpips_net])
    if {"fid", "kid"} & set(mets):
        names.append("inception_fid")
        if "fid" in mets and proto.fid_ref != "gt":
            names.append(proto.fid_ref)
    if "deg_facenet" in mets:
        names.append("facenet_vggface2")
    if "deg_arcface18" in mets:
        names.append("arcface18_vqfr")
    return names + [n for n in file_only_weights(params) if n not in names]


def file_only_weights(params) -> list[str]:
    """Weights of the evaluated metrics that have no random-init stand-in (dlib models, NIQE's
    parameters): checked even when random init is allowed."""
    from metrics import METRICS
    from metrics.protocols import get_protocol
    from metrics.weights import KNOWN
    ev = params.evaluate
    mets = get_protocol(ev.protocol).select(ev.metrics)
    return list(dict.fromkeys(n for m in mets for n in METRICS[m].needs
                              if n in KNOWN and KNOWN[n].file_only))


def released_files(params) -> list[tuple[str, str]]:
    """(what, weight name) of every released file the run imports: the entries of
    ``pipeline.imported`` (+ their extras) and the prior when ``prior.source`` is released."""
    out = []
    pl = params.pipeline
    if pl is not None:
        for name, spec in pl.imported.items():
            out.append((f"pipeline.imported.{name} ({spec.format})", spec.file))
            out += [(f"pipeline.imported.{name}.extras.{r}", f) for r, f in spec.extras.items()]
    pre = pl.pretrain if pl is not None else ["prior"]
    if params.prior is not None and params.prior.source == "released" and "prior" in pre:
        out.append(("prior.source: released (the FFHQ StyleGAN2 prior)", "stylegan2_ffhq_1024"))
    return out


def _released_missing(params, name: str, err: FRBenchError) -> str:
    """Where to put a missing released file (never random init: a released model is the file)."""
    from metrics.weights import KNOWN, torch_home
    spec = KNOWN.get(name)
    if spec is None or "does not exist" in str(err) or "does not match" in str(err):
        return str(err)
    w = params.weights
    dirs = [str(Path(d)) + "/" for d in (w.search_dirs if w else [])]
    dirs.append(str(torch_home() / spec.cache_dirs[0]) + "/")
    sha = f"sha256 {spec.sha256}" if spec.sha256 else "no sha256 published"
    return (f"missing {spec.filename} ({sha}; {spec.where}). Put it in "
            f"{' or '.join(dirs)}, or name it in weights.paths.{name}")


def _resolve_released(params, name: str):
    from metrics.weights import resolve
    w = params.weights
    return resolve(name, (w.paths or {}).get(name) if w else None, allow_random_init=False,
                   allow_download=bool(w and w.allow_download),
                   search_dirs=tuple(w.search_dirs) if w else ())


def _method_paths(params) -> list[tuple[str, str]]:
    """String values of methods entries that name files (keys ending in path/ckpt/checkpoint/
    weights, or values ending in .pt/.pth/.pkl) -> [(dotted key, path)]."""
    from pipeline.config import to_dict
    out = []
    for name in _pipeline_methods(params):
        for k, v in to_dict(params.methods[name]).items():
            if isinstance(v, str) and v and (k.endswith(("path", "ckpt", "checkpoint", "weights"))
                                             or v.endswith((".pt", ".pth", ".pkl"))):
                out.append((f"methods.{name}.{k}", v))
    return out


def _pipeline_methods(params) -> list[str]:
    pl = params.pipeline
    names = list(pl.train) if pl else list(params.methods or {})  # imported: released_files
    return [n for n in dict.fromkeys(names) if n in (params.methods or {})]


def check(params, params_path: str = "params.yaml") -> dict:
    """Raise FRBenchError at the first missing input (path + fix); return what was checked."""
    checked: list[str] = []
    d = params.data
    if d is not None and d.source == "folder":
        for split in ("train", "test"):
            s = getattr(d, split)
            folder = Path(s.folder)
            if not folder.is_dir():
                raise FRBenchError(
                    f"{folder}: data.{split}.folder does not exist. Put the "
                    f"{'FFHQ training' if split == 'train' else 'CelebA-HQ test'} images there "
                    f"(aligned face PNG/JPG files), or set data.{split}.folder in {params_path} "
                    "(README: 'Paper profile step by step')")
            if not any(folder.iterdir()):
                raise FRBenchError(f"{folder}: data.{split}.folder is empty; copy the images there")
            checked.append(str(folder))
            if s.list:
                if not Path(s.list).is_file():
                    raise FRBenchError(f"{s.list}: data.{split}.list does not exist; supply the "
                                       "image list file or set the key to null to use every image")
                checked.append(str(s.list))
    w = params.weights
    missing: list[str] = []  # every missing file of the run, reported together
    if w is not None and params.evaluate is not None:
        from metrics.weights import resolve
        names = (needed_weights(params) if not w.allow_random_init
                 else file_only_weights(params))
        for name in names:
            try:
                r = resolve(name, (w.paths or {}).get(name), allow_random_init=False,
                            allow_download=w.allow_download,
                            search_dirs=tuple(w.search_dirs))
            except FRBenchError as e:
                missing.append(f"weight file for '{name}' (evaluate.protocol "
                               f"{params.evaluate.protocol}): {e}")
                continue
            checked.append(f"{name}:{r.provenance}")
    for what, name in released_files(params):
        try:
            r = _resolve_released(params, name)
        except FRBenchError as e:
            missing.append(f"{what}: {_released_missing(params, name, e)}")
            continue
        checked.append(f"{name}:{r.provenance}")
    ts = params.testsets
    if ts is not None:
        for sname in ts.names:
            ext = ts.sets[sname].external
            if ext is None:
                continue
            for side in ("lq", "gt"):
                folder = Path(getattr(ext, side))
                if not folder.is_dir() or not any(folder.iterdir()):
                    missing.append(f"{folder}: testsets.sets.{sname}.external.{side} is missing or "
                                   f"empty; put the {side.upper()} images of the pair there (e.g. "
                                   "the released CelebA-Test archive, README 'Released models')")
                else:
                    checked.append(str(folder))
    if missing:
        raise FRBenchError(f"{len(missing)} missing input(s):\n  - " + "\n  - ".join(missing))
    for key, path in _method_paths(params):
        if not Path(path).is_file():
            raise FRBenchError(f"{path}: {key} does not exist; download the official file and put "
                               f"it there, or change {key} in {params_path}")
        checked.append(path)
    if params.train is not None and not params.train.allow_random_vgg and any(
            getattr(params.methods[m], "perceptual_weight", 0) for m in _pipeline_methods(params)):
        from metrics.weights import resolve
        r = resolve("vgg16", (w.paths or {}).get("vgg16") if w else None, allow_random_init=False,
                    search_dirs=tuple(w.search_dirs) if w else ())
        checked.append(f"vgg16:{r.provenance}")
    if params.methods and not params.profile.startswith("builtin"):  # tests cover the builtin
        from methods.config import lq_size_mismatches
        bad = lq_size_mismatches(params.methods, _pipeline_methods(params))
        if bad:
            raise FRBenchError(f"{params_path}: {bad[0]}")
    if str(params.device).startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise FRBenchError(f"device '{params.device}' in {params_path} but CUDA is not "
                               "available; run on a GPU machine or set device: cpu")
    return {"profile": params.profile, "checked": checked, "ok": True}


def run(args) -> int:
    from pipeline.config import load_params

    params = load_params(args.params)
    rec = check(params, args.params)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    log.info("preflight ok (%s profile): %d inputs checked", params.profile, len(rec["checked"]))
    if args.start_run:
        from pipeline import tracking
        tracking.prepare_parent(params)
    return 0
