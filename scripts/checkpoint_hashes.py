"""sha256 of every file a short training writes: a byte-level check of the trainer.

    PYTHONPATH=. python scripts/checkpoint_hashes.py OUT_DIR > hashes.txt

Trains the tiny prior, DRE, GPEN and Panini of ``tests/method_helpers.py`` (intermediate
checkpoints, sample grids and metrics every step or two) plus a Panini run stopped after 2 steps
and resumed, into ``OUT_DIR`` (created; pass the same path to compare two runs: paths are part of
the provenance), then prints ``<sha256/16> <file>`` for every file. The step times recorded in
the history come from a counting clock, so two runs of the same code on the same machine print
the same hashes; a refactor of the trainer that changes nothing prints them again (this is how
the split of ``methods/trainer.py::train`` was checked: the 20 files of the version before and
after were byte-identical). Needs ~10 s on one CPU thread.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    ticks = [0]

    def clock() -> float:  # one tick per call: the recorded step times become deterministic
        ticks[0] += 1
        return ticks[0] * 0.001

    time.perf_counter = clock
    import torch

    torch.set_num_threads(1)
    from method_helpers import tiny_params
    from methods.trainer import train
    from pipeline.cmd_synth import write_faces
    from pipeline.cmd_train import build_trainee

    write_faces(out / "hq", n=8, size=32, seed=0)
    params = tiny_params(out, edit=lambda d: d["train"].update(ckpt_every=2, sample_every=2,
                                                               log_every=1))
    for name in ("prior", "dre", "gpen", "panini"):
        train(build_trainee(name, params), params, out / "ckpt" / name, show_progress=False)
    train(build_trainee("panini", params), params, out / "split", stop_after=2,
          show_progress=False)
    train(build_trainee("panini", params), params, out / "split", resume=True,
          show_progress=False)
    for p in sorted(out.rglob("*")):
        if p.is_file() and "hq" not in p.relative_to(out).parts:
            print(hashlib.sha256(p.read_bytes()).hexdigest()[:16], p.relative_to(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    target = Path(sys.argv[1]).resolve()
    if target.exists() and any(target.iterdir()):
        sys.exit(f"error: {target}: exists and is not empty; give a new folder")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(target)
