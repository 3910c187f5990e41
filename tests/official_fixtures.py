"""Golden parity fixtures of the official implementations (tests/fixtures/official/).

Each fixture is a JSON manifest (how to rebuild every checkpoint tensor and every input from a
seed, the official container layout, output statistics) and a ``.pt`` of official outputs
(``{"full": {name: tensor}, "summary": {name: {crop, crop_box, pool, positions, values}}}``).
The rebuilding rules are those of the fixtures' README §1 (copied with the data):

    S = int(sha256(f"{seed}:{key}").hexdigest()[:15], 16)
    normal:           randn(base_shape or shape, generator=Generator().manual_seed(S)) * std + mean
    abs_normal_plus:  as normal, then .abs() + offset
    const:            full(shape, value, dtype)
    exact:            tensor(values, float64).to(dtype).reshape(shape)
    then clamp [lo, hi], repeat [r0, ...], .to(dtype) (in this order, when present)

Everything (seed, shapes, rules, expected outputs) is read from the files, never assumed.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

FIXTURES = Path(__file__).parent / "fixtures" / "official"

#: fixture name prefix -> import format (the parity tests run every fixture that maps)
PREFIX_FORMATS = {
    "sg2_rosinality_": "rosinality_stylegan2",
    "gpen_bfr_": "gpen_bfr",
    "gpen_d_": "gpen_bfr",
    "psp_": "psp",
    "arcface_resnet18": "arcface_resnet18",
    "irse50": "irse50",
    "gfpgan_v1_discriminators": "gfpgan_v1",
    "gfpgan_v1clean_": "gfpgan_clean",
    "gfpgan_v1_": "gfpgan_v1",
    "panini_mfr_": "panini_mfr",
    "panini_sr_": "panini_sr",
}


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def format_of(name: str) -> Optional[str]:
    for prefix, fmt in PREFIX_FORMATS.items():
        if name.startswith(prefix):
            return fmt
    return None


def fixtures_for(fmt: str) -> list[str]:
    return [n for n in fixture_names() if format_of(n) == fmt]


@lru_cache(maxsize=None)
def manifest(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def outputs(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pt", map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------------
# rebuilding

def seed_for(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()[:15], 16)


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def build_tensor(entry: dict, seed: int) -> torch.Tensor:
    """One tensor from its manifest entry (README §1, arithmetic exactly as written)."""
    rule, shape, dtype = entry["rule"], list(entry["shape"]), _dtype(entry["dtype"])
    if rule in ("normal", "abs_normal_plus"):
        g = torch.Generator().manual_seed(seed_for(seed, entry["key"]))
        t = torch.randn(list(entry.get("base_shape") or shape), generator=g, dtype=torch.float32)
        t = t * float(entry["std"])
        t = t + float(entry["mean"])
        if rule == "abs_normal_plus":
            t = t.abs() + float(entry["offset"])
    elif rule == "const":
        t = torch.full(shape, entry["value"], dtype=dtype)
    elif rule == "exact":
        t = torch.tensor(entry["values"], dtype=torch.float64).to(dtype).reshape(shape)
    else:
        raise ValueError(f"unknown rule {rule!r} for {entry['key']}")
    if "clamp" in entry:
        t = t.clamp(*entry["clamp"])
    if "repeat" in entry:
        t = t.repeat(*entry["repeat"])
    return t.to(dtype)


def check_tensor(entry: dict, t: torch.Tensor) -> Optional[str]:
    """None when ``t`` matches the entry's ``check``: the first element exactly, the float64
    sum to 1e-12 of the sum of magnitudes (the README compares with ==; a float64 reduction's
    order, hence its last bit, depends on the thread count: a wrong recipe moves the sum by far
    more)."""
    chk = entry.get("check")
    if not chk:
        return None
    d = t.double()
    s = float(d.sum())
    first = float(t.reshape(-1)[0].double())
    if abs(s - chk["sum"]) > 1e-12 * max(float(d.abs().sum()), 1e-300) or first != chk["first"]:
        return f"{entry['key']}: sum {s!r} vs {chk['sum']!r}, first {first!r} vs {chk['first']!r}"
    return None


def nest(items: list[tuple[list, torch.Tensor]]) -> dict:
    """Container from (path, tensor): ``path[:-1]`` nested dict keys, ``path[-1]`` the key."""
    root: dict = {}
    for path, t in items:
        node = root
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = t
    return root


def build_container(name: str, verify: bool = True) -> Any:
    """The official container of fixture ``name`` as ``torch.load`` of the real file would
    return it (tensors + ``container.container_extras``). With ``verify``, every tensor's
    ``check`` must match (AssertionError listing the first mismatches otherwise)."""
    m = manifest(name)
    seed = int(m["seed"])
    items, bad = [], []
    for e in m["tensors"]:
        t = build_tensor(e, seed)
        if verify:
            err = check_tensor(e, t)
            if err:
                bad.append(err)
        items.append((e["path"], t))
    assert not bad, f"{name}: {len(bad)} tensors do not match their check: {bad[:3]}"
    root = nest(items)
    extras = (m.get("container") or {}).get("container_extras") or {}
    for k, v in extras.items():
        root[k] = v
    return root


def shape_container(name: str, device: str = "meta") -> Any:
    """The container with every tensor on ``device`` (meta: shapes only, no memory), for
    layout tests of the full-size configuration; ``exact`` tensors (kernels) keep values."""
    m = manifest(name)
    items = []
    for e in m["tensors"]:
        if e["rule"] == "exact":
            t = build_tensor(e, int(m["seed"]))
        else:
            t = torch.empty(e["shape"], dtype=_dtype(e["dtype"]), device=device)
        items.append((e["path"], t))
    root = nest(items)
    for k, v in ((m.get("container") or {}).get("container_extras") or {}).items():
        root[k] = v
    return root


def build_inputs(name: str) -> dict[str, torch.Tensor]:
    m = manifest(name)
    return {e["name"]: build_tensor(e, int(m["seed"])) for e in m["inputs"]}


def output_spec(name: str, out: str) -> dict:
    for o in manifest(name)["outputs"]:
        if o["name"] == out:
            return o
    raise KeyError(f"{name}: no output {out!r}")


# ------------------------------------------------------------------------------------------
# comparing

def compare(name: str, out: str, ours: torch.Tensor, stored: Optional[dict] = None) -> dict:
    """Compare ``ours`` with the official output ``out`` of fixture ``name``.

    ``full`` outputs: the whole tensor. ``summary`` outputs: the central crop, the
    ``adaptive_avg_pool2d`` (float64) pool and the 64 stored positions. Returns
    ``{"max_abs_diff", "abs_max" (the output's stats.abs_max), "rel" (diff / abs_max),
    "compared" (what was compared), "shape"}``.
    """
    spec = output_spec(name, out)
    stored = stored if stored is not None else outputs(name)
    ours = ours.detach().float().cpu()
    assert list(ours.shape) == list(spec["shape"]), \
        f"{name}/{out}: shape {tuple(ours.shape)} vs official {tuple(spec['shape'])}"
    if spec["stored"] == "full":
        ref = stored["full"][out].float()
        diff = float((ours - ref).abs().max())
        what = f"full tensor ({ref.numel()} values)"
    else:
        s = stored["summary"][out]
        box = s.get("crop_box") or (spec.get("summary") or {}).get("crop_box_h0_h1_w0_w1")
        if box is None:  # the README's rule: central window of the stored crop's size
            h, w = s["crop"].shape[-2:]
            H, W = ours.shape[-2:]
            box = [(H - h) // 2, (H - h) // 2 + h, (W - w) // 2, (W - w) // 2 + w]
        h0, h1, w0, w1 = (int(v) for v in box)
        diffs = [float((ours[:, :, h0:h1, w0:w1] - s["crop"].float()).abs().max())]
        pool = s["pool"]
        p = F.adaptive_avg_pool2d(ours.double(), tuple(pool.shape[-2:])).float()
        diffs.append(float((p - pool.float()).abs().max()))
        pos = s["positions"].long()
        vals = ours[tuple(pos[:, i] for i in range(pos.shape[1]))]
        diffs.append(float((vals - s["values"].float()).abs().max()))
        diff = max(diffs)
        what = (f"summary: crop {h1 - h0}x{w1 - w0} per (sample, channel), pool "
                f"{tuple(pool.shape[-2:])}, {pos.shape[0]} positions")
    abs_max = float(spec["stats"]["abs_max"])
    return {"max_abs_diff": diff, "abs_max": abs_max, "rel": diff / max(abs_max, 1e-30),
            "compared": what, "shape": tuple(spec["shape"])}


def assert_close(name: str, out: str, ours: torch.Tensor, rel_tol: float = 1e-4,
                 abs_tol: Optional[float] = None, stored: Optional[dict] = None) -> dict:
    """``compare`` + assert ``max_abs_diff <= rel_tol * abs_max`` (or ``<= abs_tol``)."""
    r = compare(name, out, ours, stored)
    tol = abs_tol if abs_tol is not None else rel_tol * r["abs_max"]
    assert r["max_abs_diff"] <= tol, (f"{name}/{out}: max abs diff {r['max_abs_diff']:.3g} > "
                                      f"{tol:.3g} ({r['compared']})")
    r["tol"] = tol
    return r
