"""``frbench degrade`` (one test set from a preset) and ``frbench testsets`` (every set named in
params.yaml). See ``degradations/builder.py`` for the output layout and the seeding rule."""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def _override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise FRBenchError(f"--set '{text}': expected KEY=VALUE (VALUE in YAML, e.g. factor=8 or "
                           "factors=[2,4,8,16])")
    k, v = text.split("=", 1)
    try:
        return k.strip(), yaml.safe_load(v)
    except yaml.YAMLError as e:
        raise FRBenchError(f"--set '{text}': bad value ({e})") from None


def add_arguments(p) -> None:
    from degradations.presets import PRESETS
    p.add_argument("--preset", required=True, help=f"degradation preset: {', '.join(PRESETS)}")
    p.add_argument("--src", required=True, help="folder of HQ images")
    p.add_argument("--out", required=True, help="output folder (gt/, lq/, manifest.json)")
    p.add_argument("--seed", type=int, required=True, help="global seed of the per-image draws")
    p.add_argument("--name", default=None, help="set name used for seeding (default: the preset)")
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    p.add_argument("--n", type=int, default=0, help="first N HQ images (default all)")
    p.add_argument("--size", type=int, default=None, help="resize HQ to SIZE px first")
    p.add_argument("--list", default=None, help="file selecting images (name or stem per line)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset knob (repeatable), e.g. --set factor=8")
    p.add_argument("--nonsquare", choices=("crop", "error"), default="crop",
                   help="non-square HQ images: centre-crop (default) or refuse")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if frbench made it as another kind of output "
                        "(never a folder frbench did not make, never an input)")


def run(args) -> int:
    from degradations.builder import build_testset

    overrides = dict(_override(t) for t in args.overrides)
    build_testset(args.src, args.out, args.preset, args.seed, set_name=args.name, n=args.n,
                  size=args.size, list_file=args.list, overrides=overrides,
                  workers=args.workers, nonsquare=args.nonsquare, force=args.force)
    return 0


def add_testsets_arguments(p) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="build only this set (repeatable; DVC's foreach uses one per stage)")
    p.add_argument("--workers", type=int, default=None, help="default: testsets.workers")


def run_testsets(args) -> int:
    from degradations.builder import build_testset
    from pipeline.config import load_params

    params = load_params(args.params)
    ts, data = params.testsets, params.data
    if ts is None:
        raise FRBenchError(f"{args.params}: no 'testsets' section")
    names = args.only or ts.names
    for name in names:
        if name not in ts.sets:
            raise FRBenchError(f"testsets: unknown set '{name}' (params.yaml testsets.sets has: "
                               f"{', '.join(sorted(ts.sets))})")
    size = data.size if data is not None else None
    workers = args.workers if args.workers is not None else ts.workers
    for name in names:
        s = ts.sets[name]
        if s.external is not None:
            from degradations.external import import_pairs
            import_pairs(s.external.lq, s.external.gt, Path(ts.out_dir) / name, name, n=s.n)
            continue
        build_testset(ts.src, Path(ts.out_dir) / name, s.preset, s.seed, set_name=name,
                      n=s.n, size=size, overrides=s.overrides, workers=workers,
                      nonsquare=data.nonsquare if data is not None else "crop",
                      names={"n": f"testsets.sets.{name}.n", "seed": f"testsets.sets.{name}.seed",
                             "size": "data.size", "workers": "--workers" if args.workers
                             is not None else "testsets.workers"})
    return 0
