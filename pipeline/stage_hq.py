"""DVC stages ``hq_train`` / ``hq_test``: put one HQ split in ``data/hq/<split>/`` from params.

``python -m pipeline.stage_hq --split train [--params params.yaml] [--out data/hq/train]``

- ``data.source: synthetic``: draw ``data.<split>.n`` built-in faces with ``data.<split>.seed``
  at ``data.size`` (``frbench synth-faces``).
- ``data.source: folder``: import ``data.<split>.folder`` (optional ``list``, first ``n``, 0 = all):
  each image read, centre-cropped if non-square (``data.nonsquare``), resized to ``data.size``
  (area when shrinking) and written as ``<stem>.png`` with a manifest (source path, sha256 of
  every source and output file). The paper profile points ``folder`` at the user's CelebA-HQ /
  FFHQ folders; downstream stages read only ``data/hq/<split>``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def import_folder(src, out, size: int, n: int = 0, list_file=None, nonsquare: str = "crop") -> dict:
    """Copy (validated, cropped, resized) HQ images into ``out``; returns the manifest."""
    from core.datasets import hq_side, list_hq, load_hq
    from core.imageio import write_png
    from core.manifest import SUITE_VERSION, library_versions, sha256_file, write_json
    from core.outputs import atomic_dir, check_output_dir

    inputs = [src, list_file]
    check_output_dir(out, "hq", inputs)
    items = list_hq(src, list_file)
    if n:
        if n > len(items):
            raise FRBenchError(f"{src}: asked for {n} images but the folder has {len(items)}")
        items = items[:n]
    hq_side(items, size, nonsquare, where="data.size")
    files = {}
    with atomic_dir(out, "hq", inputs) as tmp:
        for id_, path in tqdm(items, desc=f"import {Path(src).name}", disable=len(items) < 50):
            write_png(tmp / f"{id_}.png", load_hq(path, size, nonsquare))
            files[f"{id_}.png"] = {"source": path.name, "source_sha256": sha256_file(path),
                                   "sha256": sha256_file(tmp / f"{id_}.png")}
        manifest = {"kind": "folder", "suite_version": SUITE_VERSION,
                    "params": {"folder": str(src), "list": str(list_file) if list_file else None,
                               "n": n, "size": size, "nonsquare": nonsquare},
                    "files": files, "versions": library_versions()}
        write_json(tmp / "manifest.json", manifest)
    return manifest


def main(argv=None) -> int:
    if argv is None:  # the DVC stage's process: pin CPU numerics before numpy/cv2 load
        from pipeline.cli import pin_numerics
        if (rc := pin_numerics(sys.argv[1:])) is not None:
            return rc
    ap = argparse.ArgumentParser(prog="python -m pipeline.stage_hq", description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=("train", "test"), required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=None, help="default data/hq/<split>")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        from pipeline.config import load_params

        data = load_params(args.params).data
        if data is None:
            raise FRBenchError(f"{args.params}: no 'data' section")
        split = getattr(data, args.split)
        out = args.out or f"data/hq/{args.split}"
        if data.source == "synthetic":
            from pipeline.cmd_synth import write_faces

            write_faces(out, split.n, data.size, split.seed, workers=args.workers or data.workers)
        else:
            import_folder(split.folder, out, data.size, split.n, split.list, data.nonsquare)
    except FRBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
