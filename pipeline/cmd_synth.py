"""``frbench synth-faces``: write the built-in synthetic face set.

Output folder: ``<id>.png`` (8-bit RGB, id = 5-digit index), ``faces.json`` (landmarks + generator
params per id, docs/architecture.md) and ``manifest.json`` (generator version, params, sha256 per
file, library versions). Built atomically: a failure leaves no output folder; an existing
``--out`` is replaced only if frbench made it (``core.outputs``).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path

from tqdm import tqdm

from core.errors import FRBenchError
from core.imageio import write_png
from core.outputs import atomic_dir
from core.manifest import SUITE_VERSION, library_versions, sha256_file, write_json
from pipeline.synthfaces import GENERATOR_VERSION, SUPERSAMPLE, face_id, render_face

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, required=True, help="number of faces")
    p.add_argument("--size", type=int, default=64, help="side in pixels (default 64)")
    p.add_argument("--seed", type=int, required=True, help="set seed (faces differ per seed)")
    p.add_argument("--start", type=int, default=0, help="first index (default 0)")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if frbench made it as another kind of output "
                        "(never a folder frbench did not make)")


def _job(args):
    i, size, seed, folder = args
    img, info = render_face(i, size, seed)
    write_png(Path(folder) / f"{face_id(i)}.png", img)
    return face_id(i), info


def write_faces(out: str | Path, n: int, size: int, seed: int, start: int = 0,
                workers: int = 1, force: bool = False) -> dict:
    """Render faces ``start .. start+n-1`` into ``out``; returns the manifest."""
    if n < 1:
        raise FRBenchError(f"synth-faces: --n must be >= 1, got {n}")
    if size < 16:
        raise FRBenchError(f"synth-faces: --size must be >= 16, got {size}")
    if start < 0 or start + n > 100000:
        raise FRBenchError("synth-faces: indices must lie in 0..99999 (5-digit ids)")
    if seed < 0:
        raise FRBenchError(f"synth-faces: --seed must be >= 0, got {seed}")
    if workers < 1:
        raise FRBenchError(f"synth-faces: --workers must be >= 1, got {workers}")
    with atomic_dir(out, "hq", force=force) as tmp:
        jobs = [(i, size, seed, str(tmp)) for i in range(start, start + n)]
        if workers > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                res = list(tqdm(pool.imap(_job, jobs, chunksize=8), total=n, desc="synth-faces",
                                disable=n < 50))
        else:
            res = [_job(j) for j in tqdm(jobs, desc="synth-faces", disable=n < 50)]
        faces = dict(res)
        write_json(tmp / "faces.json", faces)
        manifest = {"kind": "synthfaces", "generator": GENERATOR_VERSION,
                    "suite_version": SUITE_VERSION,
                    "params": {"n": n, "size": size, "seed": seed, "start": start,
                               "supersample": SUPERSAMPLE},
                    "files": {f"{k}.png": sha256_file(tmp / f"{k}.png") for k in sorted(faces)},
                    "faces_json_sha256": sha256_file(tmp / "faces.json"),
                    "versions": library_versions()}
        write_json(tmp / "manifest.json", manifest)
    log.info("wrote %d synthetic faces (%d px, seed %d) to %s", n, size, seed, out)
    return manifest


def run(args) -> int:
    write_faces(args.out, args.n, args.size, args.seed, args.start, args.workers, args.force)
    return 0
