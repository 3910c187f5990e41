"""Does Panini-Net beat its (bicubic-upsampled) input after the built-in training budget?

    python -m bench.panini_quality [--params params.yaml] [--checkpoints DIR] [--hq DIR] [--n 24]
                                   [--methods panini panini_catconv panini_sr] [--train]
                                   [--no-theta] [--json out.json]

``bench.quality`` for the Panini-Net entries: PSNR / SSIM / random-init LPIPS of each trained
checkpoint and of the bicubic-upsampled LQ on the held-out built-in faces, then theta (Table 4)
of the MFR model on the ``panini_ladder`` levels. See ``bench/quality.py`` for the protocol.
"""
from __future__ import annotations

from bench.quality import main as _main

DEFAULT = ("panini", "panini_catconv", "panini_sr")


def main(argv=None) -> int:
    return _main(argv, default_methods=DEFAULT, default_theta=True,
                 description=__doc__.split("\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
