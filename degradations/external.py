"""External test sets: an LQ/GT folder pair taken as it is (no degradation applied), e.g. the
released CelebA-Test archive of GFP-GAN (``celeba_512_validation_lq/`` + ``celeba_512_validation/``).

``import_pairs(lq, gt, out)`` pairs the files by name (stem), copies them into ``out/lq`` and
``out/gt`` (PNG bytes unchanged; other formats decoded and written as PNG, recorded) and writes a
``manifest.json`` hashing both sides (sha256 of every source and written file). The folder is
built under a temporary name and renamed at the end; the source folders are only read.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from tqdm import tqdm

from core.errors import FRBenchError
from core.imageio import list_images, read_image, write_png
from core.manifest import SUITE_VERSION, library_versions, sha256_file, write_json
from core.outputs import atomic_dir, check_output_dir

log = logging.getLogger(__name__)


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image
    with Image.open(path) as im:
        return im.size


def _take(src: Path, dst_dir: Path) -> tuple[Path, str]:
    """Copy a PNG byte for byte, decode anything else to PNG; -> (written file, how)."""
    dst = dst_dir / f"{src.stem}.png"
    if src.suffix.lower() == ".png":
        shutil.copyfile(src, dst)
        return dst, "copied"
    write_png(dst, read_image(src))
    return dst, f"decoded from {src.suffix.lower()} and written as PNG"


def import_pairs(lq: str | Path, gt: str | Path, out: str | Path, set_name: str,
                 n: int = 0, force: bool = False) -> dict:
    """Build test set ``out`` from the folder pair; returns its manifest. ``n``: the first n
    pairs by name (0 = all). ``out`` follows the output-folder rules (core/outputs.py; the
    pair folders are inputs: never written, never inside ``out``)."""
    lq, gt = Path(lq), Path(gt)
    check_output_dir(out, "testset", [lq, gt], force)
    lq_files = {p.stem: p for p in list_images(lq)}
    gt_files = {p.stem: p for p in list_images(gt)}
    only_lq = sorted(set(lq_files) - set(gt_files))
    only_gt = sorted(set(gt_files) - set(lq_files))
    if only_lq or only_gt:
        raise FRBenchError(f"testsets.sets.{set_name}.external: {lq} and {gt} must hold the same "
                           f"file names; only in lq: {only_lq[:3]}, only in gt: {only_gt[:3]} "
                           f"({len(only_lq)} + {len(only_gt)} unmatched)")
    ids = sorted(lq_files)
    if n < 0:
        raise FRBenchError(f"testsets.sets.{set_name}.n: must be >= 0")
    if n:
        if n > len(ids):
            raise FRBenchError(f"{lq}: asked for {n} pairs but the folders hold {len(ids)}")
        ids = ids[:n]
    images, sizes = {}, set()
    with atomic_dir(out, "testset", [lq, gt], force) as tmp:
        (tmp / "gt").mkdir()
        (tmp / "lq").mkdir()
        for id_ in tqdm(ids, desc=f"external {set_name}", disable=len(ids) < 50):
            rec = {"id": id_}
            for side, f in (("lq", lq_files[id_]), ("gt", gt_files[id_])):
                w, h = _size(f)
                if w != h:
                    raise FRBenchError(f"{f}: {w}x{h} is not square; face test sets are aligned "
                                       "square crops")
                dst, how = _take(f, tmp / side)
                rec.update({f"{side}_src_sha256": sha256_file(f), f"{side}_sha256":
                            sha256_file(dst), f"{side}_size": w, f"{side}_taken": how})
            sizes.add((rec["gt_size"], rec["lq_size"]))
            images[id_] = rec
        if len(sizes) != 1:
            raise FRBenchError(f"testsets.sets.{set_name}.external: the pairs have different "
                               f"sizes {sorted(sizes)[:4]}; one (GT, LQ) size per set")
        (hq_size, lq_size), = sizes
        manifest = {
            "kind": "testset", "name": set_name, "preset": None,
            "external": {"lq": str(lq.resolve()), "gt": str(gt.resolve()),
                         "degradation": "none applied here: the LQ files are taken as they are"},
            "suite_version": SUITE_VERSION, "levels": [], "hq_size": hq_size,
            "lq_size": lq_size, "n_images": len(ids), "n_files": len(ids),
            "versions": library_versions(), "images": images,
        }
        write_json(tmp / "manifest.json", manifest)
    log.info("test set '%s': %d external pairs (GT %d, LQ %d px) in %s", set_name, len(ids),
             hq_size, lq_size, out)
    return manifest
