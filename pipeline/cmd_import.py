"""``frbench import FORMAT SRC --name NAME [--set key=value ...] [--extra role=FILE]
[--write-params]``: import a released checkpoint (methods/released/) as ``<checkpoint_dir>/NAME/
model.pt`` and print the ``methods:`` entry that restores with it (``--write-params`` adds the
entry to params.yaml). ``frbench import --list`` lists the formats.

After the import, ``frbench restore --method NAME ...`` and ``frbench cell`` use it as a trained
model. A file that does not fit the format (wrong container, missing/unexpected keys, shape
mismatches) is an error naming the format and the first offending keys; nothing is written then.
"""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("format", nargs="?", help="format name (frbench import --list)")
    p.add_argument("src", nargs="?", help="the released file")
    p.add_argument("--name", help="entry / checkpoint name (checkpoints/NAME/model.pt)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the entry (dotted keys reach nested ones, e.g. "
                        "lq_size=64, prior_arch.narrow=0.5); values are YAML")
    p.add_argument("--extra", dest="extras", action="append", default=[], metavar="ROLE=FILE",
                   help="another file of the release (gpen_bfr: d=GPEN-BFR-512-D.pth; gfpgan_v1: "
                        "net_d=, net_d_left_eye=, net_d_right_eye=, net_d_mouth= the four "
                        "BasicSR discriminator files)")
    p.add_argument("--write-params", action="store_true",
                   help="add the methods entry to --params (methods imports only)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--out-root", default=None,
                   help="checkpoint root (default: train.checkpoint_dir of --params, else "
                        "checkpoints)")
    p.add_argument("--list", action="store_true", help="list the formats and exit")
    p.add_argument("--entry", default=None, metavar="NAME",
                   help="import pipeline.imported.NAME of --params (the DVC import@NAME stage): "
                        "its file through the weight resolver, configured by methods.NAME")


def parse_sets(items: list[str], flag: str = "--set") -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise FRBenchError(f"{flag} {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        if not k.strip():
            raise FRBenchError(f"{flag} {it!r}: empty key")
        try:
            out[k.strip()] = yaml.safe_load(v) if flag == "--set" else v
        except yaml.YAMLError as e:
            raise FRBenchError(f"{flag} {it!r}: value is not YAML ({e})") from None
    return out


def format_table() -> str:
    from methods.released import FORMATS
    lines = []
    for name in sorted(FORMATS):
        f = FORMATS[name]
        files = ", ".join(f.official_files)
        lines.append(f"{name:22s} {f.kind:8s} {files}\n{'':31s}{f.description}")
    return "\n".join(lines)


def entry_yaml(name: str, entry: dict) -> str:
    flow = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=10 ** 6).strip()
    return f"  {name}: {flow}"


def write_params_entry(params_path: str | Path, name: str, entry: dict) -> bool:
    """Add ``methods.<name>: entry`` to params.yaml (one flow-style line right under
    ``methods:``; the rest of the file, comments included, is untouched). Returns False when
    the identical entry is already there; FRBenchError when a different one is."""
    from pipeline.config import Params, build, load_params, to_dict
    p = Path(params_path)
    params = load_params(p)
    if name in (params.methods or {}):
        have = to_dict(params.methods[name])
        want = to_dict(build(type(params.methods[name]), entry, f"methods.{name}"))
        if have == want:
            return False
        raise FRBenchError(f"{p}: methods.{name} already exists with other settings; remove it "
                           "or import under another --name")
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    at = [i for i, ln in enumerate(lines) if ln.rstrip() == "methods:"]
    if len(at) != 1:
        raise FRBenchError(f"{p}: no block-style 'methods:' line to add the entry under; add "
                           "the printed entry by hand")
    lines.insert(at[0] + 1, entry_yaml(name, entry) + "\n")
    text = "".join(lines)
    build(Params, yaml.safe_load(text))  # validate before writing
    tmp = p.with_name(f".{p.name}.import.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return True


def resolve_file(params, weight_name: str, what: str):
    """A released file through the weight resolver (never random init): ``Resolved``."""
    from metrics.backbones import resolve_for
    from metrics.config import WeightsConfig
    w = params.weights or WeightsConfig(allow_random_init=False, allow_download=False,
                                        random_init_seed=0)
    strict = WeightsConfig(allow_random_init=False, allow_download=w.allow_download,
                           random_init_seed=w.random_init_seed, paths=dict(w.paths or {}),
                           search_dirs=list(w.search_dirs or []))
    try:
        return resolve_for(weight_name, strict)
    except FRBenchError as e:
        raise FRBenchError(f"{what}: {e}") from None


def import_entry(params, name: str):
    """Import ``pipeline.imported.<name>`` (file via the resolver) configured exactly as
    ``methods.<name>`` (the whole entry is passed as overrides, so the checkpoint's config is
    the params entry; a file that does not fit it is an error)."""
    from methods.released.base import import_checkpoint
    from pipeline.config import to_dict
    pl = params.pipeline
    if pl is None or name not in pl.imported:
        raise FRBenchError(f"params: pipeline.imported has no entry '{name}'")
    spec = pl.imported[name]
    if name not in (params.methods or {}):
        raise FRBenchError(f"params: pipeline.imported.{name}: no methods.{name} entry")
    src = resolve_file(params, spec.file, f"pipeline.imported.{name}.file")
    extras = {r: resolve_file(params, w, f"pipeline.imported.{name}.extras.{r}").path
              for r, w in spec.extras.items()} or None
    entry = to_dict(params.methods[name])
    return import_checkpoint(spec.format, src.path, name, out_root=params.train.checkpoint_dir,
                             overrides=entry, extras=extras, params=params)


def import_prior(params, out_dir: str | Path):
    """``prior.source: released``: import the released FFHQ StyleGAN2 (weight
    ``stylegan2_ffhq_1024``) as the prior checkpoint, configured by the ``prior`` section (its
    ``arch`` must match the file: else an error naming the mismatching shapes)."""
    from methods.released.base import import_checkpoint
    from pipeline.config import to_dict
    src = resolve_file(params, "stylegan2_ffhq_1024", "prior.source: released")
    out = Path(out_dir)
    if out.name != "prior":
        raise FRBenchError(f"--out {out}: the imported prior is written to <dir>/prior")
    return import_checkpoint("rosinality_stylegan2", src.path, "prior", out_root=out.parent,
                             overrides=to_dict(params.prior), params=params)


def run(args) -> int:
    if args.list:
        print(format_table())
        return 0
    if args.entry:
        from pipeline.config import load_params
        imp = import_entry(load_params(args.params), args.entry)
        log.info("%s: %s (%s) -> %s", args.entry, imp.source, imp.converted.config["arch"],
                 imp.path)
        return 0
    if not args.format or not args.src or not args.name:
        raise FRBenchError("usage: frbench import FORMAT SRC --name NAME (frbench import --list "
                           "for the formats)")
    from methods.released.base import get_format, import_checkpoint

    fmt = get_format(args.format)
    if not Path(args.src).is_file():
        raise FRBenchError(f"{args.src}: file not found (the released {fmt.name} file, e.g. "
                           f"{', '.join(fmt.official_files)})")
    params = None
    if Path(args.params).is_file():
        from pipeline.config import load_params
        params = load_params(args.params)
    elif args.write_params:
        raise FRBenchError(f"{args.params}: params file not found (--write-params)")
    out_root = args.out_root or (params.train.checkpoint_dir if params is not None and
                                 params.train is not None else "checkpoints")
    extras = parse_sets(args.extras, "--extra") or None
    if args.write_params and fmt.kind != "method":
        raise FRBenchError(f"--write-params: format {fmt.name} imports a {fmt.kind}, not a "
                           "methods entry; edit params.yaml as printed")
    imp = import_checkpoint(fmt.name, args.src, args.name, out_root=out_root,
                            overrides=parse_sets(args.sets), extras=extras)
    conv = imp.converted
    print(f"# imported {args.src} ({fmt.name}, mapping v{fmt.mapping_version}) -> {imp.path}")
    print(f"# source: {imp.source}")
    for k, v in conv.filled.items():
        print(f"# filled  {k}: {v}")
    n_skipped = len(conv.skipped)
    if n_skipped:
        print(f"# skipped {n_skipped} file entries (e.g. {next(iter(conv.skipped))}: "
              f"{next(iter(conv.skipped.values()))})")
    for n in conv.notes:
        print(f"# note    {n}")
    if conv.kind == "method":
        print("methods:")
        print(entry_yaml(args.name, conv.config))
        if args.write_params:
            added = write_params_entry(args.params, args.name, conv.config)
            print(f"# {'added to' if added else 'already in'} {args.params}")
    elif conv.kind == "prior":
        print("# the methods read <checkpoint_dir>/prior/model.pt: import with --name prior and "
              "use this prior section:")
        print(yaml.safe_dump({"prior": conv.config}, default_flow_style=None, sort_keys=False,
                             width=100).rstrip())
    else:
        wname = fmt.weights.get(Path(args.src).name) or next(iter(fmt.weights.values()), None)
        print("# evaluation and losses read the original file through the weight resolver:")
        print(f"weights.paths.{wname}: {Path(args.src).resolve()}")
    return 0
