"""Fixed degraded test sets: HQ folder + preset + seed -> ``gt/``, ``lq/`` and ``manifest.json``.

Each output image ``<oid>`` (the HQ id, or ``<level>_<id>`` for presets with levels such as
``panini_ladder``) draws its parameters from ``rng_for(seed, set_name, id)`` (the same generator for
every level of one image, so levels share the noise seed), hence the bytes do not depend on the
order, the worker count or which other images are in the set. ``gt/<oid>.png`` is the HQ image at
the HQ size, ``lq/<oid>.png`` the degraded one at ``preset.lq_size``. The manifest records per image
every drawn parameter and the sha256 of both files, plus preset, overrides, seed, suite version and
library versions. The folder is built under a temporary name and renamed at the end; it may
replace only an earlier test set (``core.outputs``: never a folder the suite did not make, never
the source folder or one containing or inside it). Every HQ image's size is checked from its
header before anything is decoded (``core.datasets.hq_side``).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path

from tqdm import tqdm

from degradations.presets import Preset, get_preset
from core.datasets import hq_side, list_hq, load_hq
from core.errors import FRBenchError
from core.imageio import to_float, write_png
from core.outputs import atomic_dir, check_output_dir
from core.manifest import SUITE_VERSION, library_versions, sha256_file, write_json
from core.seeding import rng_for

log = logging.getLogger(__name__)


def _job(args):
    preset, set_name, seed, id_, path, size, nonsquare, tmp = args
    hq = load_hq(path, size, nonsquare)
    n = hq.shape[0]
    hqf = to_float(hq)
    out = []
    for level in (preset.levels or (None,)):
        params = preset.sample(rng_for(seed, set_name, id_), n, level=level)
        lq = preset.apply(hqf, params)
        oid = f"{level}_{id_}" if level else id_
        gt_p, lq_p = Path(tmp) / "gt" / f"{oid}.png", Path(tmp) / "lq" / f"{oid}.png"
        write_png(gt_p, hq)
        write_png(lq_p, lq)
        out.append((oid, {"id": oid, "src_id": id_, "level": level, "params": params,
                          "hq_size": n, "lq_size": int(lq.shape[0]),
                          "gt_sha256": sha256_file(gt_p), "lq_sha256": sha256_file(lq_p)}))
    return out


def build_testset(src: str | Path, out: str | Path, preset: str | Preset, seed: int,
                  set_name: str | None = None, n: int | None = None, size: int | None = None,
                  list_file: str | Path | None = None, overrides: dict | None = None,
                  workers: int = 1, nonsquare: str = "crop", force: bool = False,
                  names: dict | None = None) -> dict:
    """Build one test set; returns its manifest. ``n``: first n HQ images (None/0 = all).
    ``force``: replace a folder the suite made as another kind of output. ``names``: how the
    settings are called in messages (default the ``frbench degrade`` flags, e.g.
    ``{"workers": "testsets.workers"}`` from params)."""
    names = {"n": "--n", "workers": "--workers", "size": "--size", "seed": "--seed",
             **(names or {})}
    if isinstance(preset, str):
        preset_name = preset
        preset = get_preset(preset, overrides)
    else:
        preset_name = preset.name
        if overrides:
            preset = preset.override(**overrides)
    set_name = set_name or preset_name
    for key, value, low in (("n", n or 0, 0), ("workers", workers, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise FRBenchError(f"{names[key]}: must be an integer >= {low}, got {value!r}")
    inputs = [src, list_file]
    check_output_dir(out, "testset", inputs, force)
    items = list_hq(src, list_file)
    if n:
        if n > len(items):
            raise FRBenchError(f"{src}: asked for {n} images but the folder has {len(items)}")
        items = items[:n]
    hq_side(items, size, nonsquare, where=names["size"])
    with atomic_dir(out, "testset", inputs, force) as tmp:
        (tmp / "gt").mkdir()
        (tmp / "lq").mkdir()
        jobs = [(preset, set_name, seed, id_, str(p), size, nonsquare, str(tmp))
                for id_, p in items]
        bar = dict(total=len(jobs), desc=f"degrade {set_name}", disable=len(jobs) < 50)
        if workers > 1 and len(jobs) > 1:
            with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
                res = list(tqdm(pool.imap(_job, jobs, chunksize=4), **bar))
        else:
            res = [_job(j) for j in tqdm(jobs, **bar)]
        images = {oid: rec for group in res for oid, rec in group}
        sizes = {(r["hq_size"], r["lq_size"]) for r in images.values()}
        if len(sizes) != 1:
            raise FRBenchError(f"{src}: HQ images have different sizes {sorted(sizes)}; pass --size")
        (hq_size, lq_size), = sizes
        src_manifest = Path(src) / "manifest.json"
        manifest = {
            "kind": "testset", "name": set_name, "preset": preset_name,
            "preset_source": preset.source, "preset_config": preset.config(),
            "overrides": dict(overrides or {}), "seed": seed, "suite_version": SUITE_VERSION,
            "levels": list(preset.levels), "hq_size": hq_size, "lq_size": lq_size,
            "n_images": len(items), "n_files": len(images),
            "source": {"folder": str(src), "list_file": str(list_file) if list_file else None,
                       "size": size,
                       "manifest_sha256": sha256_file(src_manifest) if src_manifest.is_file()
                       else None},
            "versions": library_versions(),
            "images": images,
        }
        write_json(tmp / "manifest.json", manifest)
    log.info("built test set '%s' (%s, %d files, HQ %d -> LQ %d px) in %s", set_name, preset_name,
             len(images), hq_size, lq_size, out)
    return manifest
