"""Released checkpoints of the official implementations, imported into our modules.

``FORMATS`` maps a format name (``frbench import FORMAT SRC --name NAME``) to its ``Format``
(methods/released/base.py). It is built lazily by explicit imports in ``_load_formats`` (like
``methods.METHODS``; no registry machinery). To add a format: write its module (a ``FORMAT``
constant or several), import it in ``_load_formats`` and add its line(s) to the dict.
"""
from __future__ import annotations

from typing import Any


def _load_formats() -> dict[str, Any]:
    from methods.released import gfpgan, gpen, identity, panini, psp, stylegan2
    table: dict[str, Any] = {
        "rosinality_stylegan2": stylegan2.FORMAT,
        "gpen_bfr": gpen.FORMAT,
        "psp": psp.FORMAT,
        "arcface_resnet18": identity.ARCFACE18,
        "irse50": identity.IRSE50_FORMAT,
        "gfpgan_v1": gfpgan.V1,
        "gfpgan_clean": gfpgan.CLEAN,
        "panini_mfr": panini.MFR,
        "panini_sr": panini.SR,
    }
    return table


_CACHE: dict[str, Any] = {}


def __getattr__(name: str):
    if name == "FORMATS":
        if "FORMATS" not in _CACHE:
            _CACHE["FORMATS"] = _load_formats()
        return _CACHE["FORMATS"]
    raise AttributeError(f"module 'methods.released' has no attribute {name!r}")
