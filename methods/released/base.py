"""Importing released checkpoints: the shared machinery of every format.

A ``Format`` knows one official container layout (which top-level entries the official loader
reads, which keys it expects) and converts it into our modules' key names (``convert``). This
module does the rest, the same for every format:

1. ``load_container``: ``torch.load(src, weights_only=True)`` (never unpickles code; a file that
   needs unpickling, e.g. a whole pickled module, is refused with a clear error);
2. ``Format.convert(container, overrides) -> Converted``: our configuration (a ``methods:``
   entry, the ``prior`` section, or a backbone name) + our state dict, with what was filled
   (tensors our modules have and the file has not) and skipped (file tensors we do not store,
   each checked where it can be, e.g. FIR blur kernels compared with ours);
3. ``build_module``: our module from that configuration;
4. ``check_layout``: every key of our module's ``state_dict()`` present with its shape and no key
   left over, else ``FRBenchError`` naming the format, the first offending keys and shapes (the
   file's own key names where the format recorded them);
5. ``import_checkpoint``: load with ``strict=True`` and write ``<out_root>/<name>/model.pt`` in
   the trainer's ``frbench-checkpoint/1`` format (``step == total_steps``: an imported model is
   complete), so that ``methods.trainer.load_for_inference`` and ``frbench restore`` work as for
   a trained model. Nothing is written unless every check passed.

Layout tests build the module on ``torch.device("meta")`` (``check_layout(..., meta=True)``), so
that a 1024 px configuration costs no memory.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import torch
from torch import nn

from core.errors import FRBenchError

log = logging.getLogger(__name__)

#: how many offending keys an error message lists
SHOW = 5


class FormatError(FRBenchError):
    """The container does not have the layout the format expects (raised by ``convert``)."""


@dataclass
class Converted:
    """What ``Format.convert`` returns.

    ``kind``: "prior" | "method" | "backbone". ``arch``: our ``methods:`` arch, "stylegan2" for
    the prior, or the backbone name. ``config``: the plain dict of the ``methods:`` entry (with
    ``arch``), of the ``prior`` section, or ``{"arch": backbone}``. ``state``: tensors for our
    module's ``state_dict()`` (loaded with ``strict=True``). ``ema``: {submodule: state dict}
    (EMA copies the trainer keeps, e.g. the prior's ``g_ema``). ``filled``: {our key (or a
    ``prefix.*``): how it was filled}. ``skipped``: {file key (or pattern): why it was dropped}.
    ``origin``: {our key: file key} for error messages (``ema/<sub>/<key>`` for EMA copies). ``checks``: {our buffer name: the file's
    value} for buffers we do not store (FIR kernels); ``build_module`` compares them.
    ``extras``: other tensors kept in the checkpoint (e.g. the StyleGAN2 ``latent_avg``).
    """
    kind: str
    arch: str
    config: dict
    state: dict[str, torch.Tensor]
    ema: dict[str, dict] = field(default_factory=dict)
    filled: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)
    checks: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    #: key prefixes of our model that take our module's own (seeded) init because the file has
    #: no counterpart (each also named in ``filled``)
    fill_from_init: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Format:
    """One released container layout.

    ``official_files``: {official file name: sha256 published with the release, or None}.
    ``where_read``: the official lines that read (and write) the container, as file:line.
    ``mapping_version``: bump when the key mapping changes (recorded in every import).
    ``convert(container, overrides) -> Converted``; ``overrides`` are ``--set key=value`` pairs
    (dotted keys reach nested dicts) applied to the configuration.
    ``weights``: {official file name: the ``metrics.weights.KNOWN`` name it resolves under}.
    """
    name: str
    arch: str
    description: str
    official_files: dict[str, Optional[str]]
    where_read: tuple[str, ...]
    mapping_version: int
    convert: Callable[..., Converted]
    kind: str = "method"
    weights: dict[str, str] = field(default_factory=dict)
    feeds: str = ""  # which paper table(s) the released model feeds (README "Released models")


# ------------------------------------------------------------------------------------------
# key-mapping helpers (used by the formats)

def shape_of(t: Any) -> tuple:
    return tuple(t.shape) if hasattr(t, "shape") else ()


def describe(keys, table: dict, n: int = SHOW, prefix: str = "") -> str:
    """'k1 (a, b), k2 (c,) ... (+N more)' for the first ``n`` keys."""
    keys = list(keys)
    out = ", ".join(f"{prefix}{k} {shape_of(table[k]) if k in table else ''}".rstrip()
                    for k in keys[:n])
    return out + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def tensors_of(fmt: str, container: Any, key: Optional[str], what: str) -> dict:
    """``container[key]`` (or the container itself when ``key`` is None) as a dict of tensors;
    FormatError naming the top-level keys otherwise."""
    if not isinstance(container, dict):
        raise FormatError(f"format {fmt}: expected a dict ({what}), got {type(container).__name__}")
    sd = container if key is None else container.get(key)
    if key is not None and sd is None:
        top = ", ".join(map(str, list(container)[:8])) or "none"
        raise FormatError(f"format {fmt}: no '{key}' entry ({what}); the file's top-level keys: "
                          f"{top}")
    if not isinstance(sd, dict) or not sd:
        raise FormatError(f"format {fmt}: '{key}' is not a state dict ({what})")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise FormatError(f"format {fmt}: '{key or 'state dict'}' holds non-tensor entries "
                          f"({', '.join(map(str, bad[:SHOW]))}); not a {what}")
    return sd


def rename(sd: dict, rules: list[tuple[str, str]], prefix: str = "") -> dict[str, tuple[str, Any]]:
    """{our key: (file key, tensor)}: each file key is rewritten by the first matching regex rule
    (``re.sub`` with a full match), else kept; ``prefix`` is put in front of the result."""
    out: dict[str, tuple[str, Any]] = {}
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in sd.items():
        new = k
        for pat, rep in compiled:
            if pat.fullmatch(k):
                new = pat.sub(rep, k)
                break
        out[prefix + new] = (k, v)
    return out


def split_kernels(mapped: dict[str, tuple[str, Any]], conv: Converted,
                  why: str = "FIR blur kernel buffer (not stored by our modules)",
                  src_prefix: str = "") -> None:
    """Move every ``*.kernel`` entry of ``mapped`` into ``conv.checks`` (compared with our
    module's non-persistent buffer of the same name by ``build_module``) and ``conv.skipped``;
    everything else into ``conv.state`` / ``conv.origin``. ``src_prefix`` names the file's
    container level in messages (``g_ema/``)."""
    for ours, (src, t) in mapped.items():
        src = src_prefix + src
        conv.origin[ours] = src
        if ours.endswith(".kernel"):
            conv.checks[ours] = t
            conv.skipped[src] = f"{why}; equal to ours (checked)"
        else:
            conv.state[ours] = t


def apply_overrides(config: dict, overrides: Optional[dict], where: str = "") -> dict:
    """Deep copy of ``config`` with ``overrides`` ({"a.b": v} or {"a": v}) applied."""
    out = copy.deepcopy(config)
    for dotted, value in (overrides or {}).items():
        parts = str(dotted).split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {} if node.get(p) is None else node[p]
                if not isinstance(node[p], dict):
                    raise FRBenchError(f"--set {dotted}: '{p}' is not a mapping in {where or 'the entry'}")
            node = node[p]
        node[parts[-1]] = copy.deepcopy(value)
    return out


def seeded_noise_buffers(generator_prefix: str, num_layers: int, seed: int = 0) -> dict:
    """``noises.noise_{i}`` (1, 1, r, r) drawn from a fixed seed (for files without them)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(num_layers):
        r = 2 ** ((i + 5) // 2)
        out[f"{generator_prefix}noises.noise_{i}"] = torch.randn(1, 1, r, r, generator=g)
    return out


# ------------------------------------------------------------------------------------------
# loading, building, checking

def load_container(src: str | os.PathLike) -> Any:
    """``torch.load(src, map_location='cpu', weights_only=True)`` with clear errors."""
    p = Path(src)
    if not p.is_file():
        raise FRBenchError(f"{p}: file not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).split("\n")[0][:300]
        raise FRBenchError(f"{p}: cannot be read with torch.load(weights_only=True) "
                           f"({e.__class__.__name__}: {msg}); released checkpoints are plain "
                           "tensor dicts: is this the right file?") from None


def sha256_of(src: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stub_params(name: str, cfg: Any) -> SimpleNamespace:
    """What a method's constructor may read from params when its entry carries its own
    ``prior_arch`` (imported models need no other section)."""
    return SimpleNamespace(prior=None, dre=None, weights=None, methods={name: cfg}, seed=0)


def build_config(conv: Converted, name: str):
    """The typed configuration (dataclass) of ``conv`` (FRBenchError on a bad entry)."""
    from core.config import build
    if conv.kind == "method":
        from methods.config import ARCH_CONFIGS
        if conv.config.get("arch") not in ARCH_CONFIGS:
            raise FRBenchError(f"methods.{name}.arch: unknown architecture {conv.config.get('arch')!r}")
        return build(ARCH_CONFIGS[conv.config["arch"]], conv.config, f"methods.{name}")
    if conv.kind == "prior":
        from methods.config import PriorConfig
        return build(PriorConfig, conv.config, "prior")
    return dict(conv.config)


def build_module(conv: Converted, name: str, params: Any = None) -> nn.Module:
    """Our module for ``conv``, its parameters at an init seeded by ``name`` (what
    ``fill_from_init`` keys keep); not loaded yet."""
    from core.seeding import stable_seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_seed(0, "import", name) & 0x7FFF_FFFF_FFFF_FFFF)
        return _build_module(conv, name, params)


def _build_module(conv: Converted, name: str, params: Any = None) -> nn.Module:
    cfg = build_config(conv, name)
    if conv.kind == "method":
        from methods import __getattr__ as _methods
        table = _methods("METHODS")
        if params is None or getattr(params, "methods", None) is None \
                or getattr(cfg, "prior_arch", None) is not None:
            params = params if params is not None and getattr(cfg, "prior_arch", None) is None \
                else _stub_params(name, cfg)
        return table[conv.arch](name=name, cfg=cfg, params=params)
    if conv.kind == "prior":
        from methods.prior import PriorGAN
        return PriorGAN(cfg, params, name=name)
    if conv.kind == "backbone":
        from metrics.backbones import IRSE50, ResNetFace18
        table = {"arcface18": ResNetFace18, "irse50": IRSE50}
        if conv.arch not in table:
            raise FRBenchError(f"unknown backbone {conv.arch!r} (known: {', '.join(table)})")
        return table[conv.arch]()
    raise FRBenchError(f"unknown import kind {conv.kind!r}")


def _layout_error(fmt: str, label: str, what: str, missing, unexpected, mismatched,
                  own: dict, state: dict, origin: dict, prefix: str = "") -> FRBenchError:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of our tensors have no counterpart in the file: "
                     + describe(missing, own, prefix=prefix))
    if unexpected:
        ks = list(unexpected)
        shown = ", ".join(f"{origin.get(k, k)} {shape_of(state[k])}" for k in ks[:SHOW])
        parts.append(f"{len(ks)} file tensors map to nothing of ours: {shown}"
                     + (f" (+{len(ks) - SHOW} more)" if len(ks) > SHOW else ""))
    if mismatched:
        shown = ", ".join(f"{origin.get(k, k)} {shape_of(state[k])} vs ours {prefix}{k} "
                          f"{shape_of(own[k])}" for k in mismatched[:SHOW])
        parts.append(f"{len(mismatched)} shape mismatches: {shown}"
                     + (f" (+{len(mismatched) - SHOW} more)" if len(mismatched) > SHOW else ""))
    return FRBenchError(f"{label}: format {fmt}: {what} does not fit: " + "; ".join(parts)
                        + ". Wrong file, wrong format, or a configuration that needs --set "
                        "(e.g. size, channel multiplier)?")


def compare_layout(fmt: str, label: str, what: str, module: nn.Module, state: dict,
                   origin: Optional[dict] = None, prefix: str = "") -> None:
    """FRBenchError unless ``state`` has exactly ``module.state_dict()``'s keys and shapes
    (``prefix``: the submodule's name, for messages)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and shape_of(own[k]) != shape_of(state[k])]
    if missing or unexpected or mismatched:
        raise _layout_error(fmt, label, what, missing, unexpected, mismatched, own, state,
                            origin or {}, prefix)


def check_layout(fmt_name: str, container: Any, name: str = "imported",
                 overrides: Optional[dict] = None, label: str = "<container>",
                 meta: bool = False, params: Any = None, extras: Optional[dict] = None
                 ) -> tuple[Converted, nn.Module]:
    """convert + build + key/shape check (no values loaded). With ``meta=True`` the module is
    built on the meta device (layout tests of full-size configurations)."""
    fmt = get_format(fmt_name)
    try:
        conv = fmt.convert(container, dict(overrides or {}), **({"extras": extras} if extras
                                                                else {}))
    except FormatError as e:
        raise FRBenchError(f"{label}: {e}") from None
    if meta:
        with torch.device("meta"):
            module = build_module(conv, name, params)
    else:
        module = build_module(conv, name, params)
    verify(fmt.name, label, conv, module, values=not meta)
    return conv, module


def verify(fmt: str, label: str, conv: Converted, module: nn.Module, values: bool = True) -> None:
    """Keys and shapes of the model and of each EMA copy; with ``values`` also the skipped
    buffers (``conv.checks``) against ours. Keys under ``conv.fill_from_init`` that the file
    lacks are first taken from ``module``'s own init."""
    if conv.fill_from_init:
        for k, v in module.state_dict().items():
            if k not in conv.state and k.startswith(tuple(conv.fill_from_init)):
                conv.state[k] = v.detach().clone()
    compare_layout(fmt, label, "the model", module, conv.state, conv.origin)
    for sub, sd in conv.ema.items():
        p = f"ema/{sub}/"
        origin = {k[len(p):]: v for k, v in conv.origin.items() if k.startswith(p)}
        compare_layout(fmt, label, f"EMA '{sub}'", module.get_submodule(sub), sd, origin,
                       prefix=f"{sub}.")
    if not values:
        return
    bufs = dict(module.named_buffers())
    for k, t in conv.checks.items():
        src = conv.origin.get(k, k)
        if k not in bufs:
            raise FRBenchError(f"{label}: format {fmt}: file buffer {src} has no counterpart "
                               f"{k} in our model")
        if bufs[k].shape != t.shape or not torch.allclose(bufs[k].float(), t.float(), rtol=0,
                                                          atol=1e-6):
            raise FRBenchError(f"{label}: format {fmt}: buffer {src} {shape_of(t)} differs from "
                               f"ours {k} {shape_of(bufs[k])} (a different blur kernel?)")


def guess_hint(container: Any, tried: str) -> str:
    """'; it looks like a <format> file' when another format reads the container (renames
    only, no model is built), else ''."""
    from methods.released import FORMATS
    fits = []
    for name, f in FORMATS.items():
        if name == tried:
            continue
        try:
            f.convert(container, {})
        except Exception:
            continue
        fits.append(name)
    return f"; it looks like a {' or '.join(fits)} file" if fits else ""


def get_format(name: str) -> Format:
    from methods.released import FORMATS
    if name not in FORMATS:
        raise FRBenchError(f"unknown format '{name}' (known: {', '.join(sorted(FORMATS))})")
    return FORMATS[name]


# ------------------------------------------------------------------------------------------
# import

@dataclass
class Imported:
    """Result of ``import_checkpoint``: the loaded module, the conversion, the checkpoint dict
    and where it was written (None for a dry run)."""
    module: nn.Module
    converted: Converted
    checkpoint: dict
    path: Optional[Path]
    source: str


def _source(src: Any) -> tuple[Any, str, str]:
    """(container, provenance source string, label for messages)."""
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        container = load_container(p)
        return container, f"file:{p.name}@sha256:{sha256_of(p)[:16]}", str(p)
    return src, "memory:<in-memory container>", "<in-memory container>"


def is_imported_checkpoint(path: str | os.PathLike) -> bool:
    """True when ``path`` is a checkpoint written by ``import_checkpoint``."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(ck, dict) and isinstance(ck.get("provenance"), dict) \
        and "format" in ck["provenance"] and "mapping_version" in ck["provenance"]


def import_checkpoint(fmt_name: str, src: Any, name: str, out_root: Optional[str | os.PathLike]
                      = "checkpoints", overrides: Optional[dict] = None, params: Any = None,
                      extras: Optional[dict] = None) -> Imported:
    """Import a released checkpoint (a path, or an in-memory container as ``torch.load`` would
    return it) as entry ``name`` and write ``<out_root>/<name>/model.pt`` (``out_root=None``:
    build and load only). ``extras``: {role: path or container} for formats that take more than
    one file (e.g. GPEN's discriminator). Raises FRBenchError before writing anything when the
    file does not fit."""
    from methods.trainer import FORMAT, _jsonable

    fmt = get_format(fmt_name)
    container, source, label = _source(src)
    extra_sources, conv_kwargs = {}, {}
    if extras:
        loaded = {}
        for role, x in extras.items():
            loaded[role], extra_sources[role], _ = _source(x)
        conv_kwargs["extras"] = loaded
    try:
        conv = fmt.convert(container, dict(overrides or {}), **conv_kwargs)
    except FormatError as e:
        raise FRBenchError(f"{label}: {e}{guess_hint(container, fmt.name)}") from None
    module = build_module(conv, name, params)
    verify(fmt.name, label, conv, module)
    module.load_state_dict(conv.state, strict=True)
    ema_states = {}
    for sub, sd in conv.ema.items():
        m = copy.deepcopy(module.get_submodule(sub))
        m.load_state_dict(sd, strict=True)
        ema_states[sub] = {k: v.detach().cpu() for k, v in m.state_dict().items()}
    module.eval()
    provenance = {"source": source, "format": fmt.name, "mapping_version": fmt.mapping_version,
                  "filled": dict(conv.filled), "skipped": dict(conv.skipped)}
    if extra_sources:
        provenance["extra_sources"] = extra_sources
    if hasattr(module, "provenance"):
        module.provenance.update(provenance)
    cfg = build_config(conv, name)
    total = int(getattr(cfg, "steps", 0) or 0) if conv.kind in ("method", "prior") else 0
    if conv.kind == "backbone":
        config = _jsonable({"arch": conv.arch})
        method_name, arch = name, conv.arch
    else:
        config = _jsonable(module.config_dict())
        method_name, arch = name, module.arch
    ck = {
        "format": FORMAT, "kind": conv.kind if conv.kind != "method" else module.kind,
        "method": method_name, "arch": arch, "config": config,
        "out_size": getattr(module, "out_size", None), "lq_size": getattr(module, "lq_size", None),
        "step": total, "total_steps": total, "global_batch": int(getattr(cfg, "batch_size", 1) or 1),
        "world_size": 1, "data_position": 0,
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "ema": ema_states, "optimizers": {}, "scalers": {}, "rng": [], "history": [],
        "provenance": provenance, "versions": {"torch": str(torch.__version__)},
        "imported": {"entry": conv.config, "notes": list(conv.notes), "extras": conv.extras},
    }
    path = None
    if out_root is not None:
        from core.outputs import atomic_dir
        out = Path(out_root) / name
        path = out / "model.pt"
        if path.exists() and not is_imported_checkpoint(path):
            raise FRBenchError(f"{path}: exists and is not an imported checkpoint (a trained "
                               "model?); choose another --name or move it away first")
        inputs = [src] if isinstance(src, (str, os.PathLike)) else []
        inputs += [x for x in (extras or {}).values() if isinstance(x, (str, os.PathLike))]
        with atomic_dir(out, "checkpoint", inputs) as tmp:
            torch.save(ck, tmp / "model.pt")
            (tmp / "import.json").write_text(json.dumps(
                {"name": name, "kind": ck["kind"], "arch": arch, "entry": conv.config,
                 "provenance": provenance, "notes": conv.notes}, indent=1, default=str) + "\n",
                encoding="utf-8")
        log.info("%s: imported %s (%s) -> %s", name, label, fmt.name, path)
    return Imported(module, conv, ck, path, source)
