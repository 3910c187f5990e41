"""Do the baselines (GPEN, GFP-GAN, pSp + ablations) beat their bicubic-upsampled input?

    python -m bench.baselines_quality [--params params.yaml] [--checkpoints DIR] [--hq DIR]
                                      [--n 24] [--methods gpen gfpgan psp ...] [--train]
                                      [--threads 1] [--json out.json]

``bench.quality`` for the baseline entries: with ``--train`` each is first trained by the shared
trainer for its params budget; then PSNR / SSIM / random-init LPIPS of its restorations and of the
bicubic-upsampled LQ on the held-out built-in faces (the same seeded LQ for every method of a
preset). See ``bench/quality.py`` for the protocol.
"""
from __future__ import annotations

from bench.quality import main as _main

DEFAULT = ("gpen", "gpen_noft", "gpen_nonoise", "gpen_noiseadd", "gfpgan", "gfpgan_sft", "psp")


def main(argv=None) -> int:
    return _main(argv, default_methods=DEFAULT, description=__doc__.split("\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
