"""methods package: the StyleGAN2 prior, Panini-Net, the baselines, the shared trainer.

``METHODS`` maps an architecture name (the ``arch`` key of a ``methods:`` entry in params.yaml)
to its ``Method`` class. It is built lazily by explicit imports in ``_load_methods`` (no registry
machinery), so that ``import methods.config`` (params loading) never imports torch.
To add an architecture: import its class in ``_load_methods`` and add one line to the dict.
"""
from __future__ import annotations

from typing import Any


def _load_methods() -> dict[str, type]:
    from methods.bicubic import Bicubic
    from methods.gfpgan import GFPGAN
    from methods.gpen import GPEN
    from methods.panini import Panini
    from methods.psp import PSP
    table: dict[str, type] = {
        "bicubic": Bicubic,
        "panini": Panini,
        "gpen": GPEN,
        "gfpgan": GFPGAN,
        "psp": PSP,
    }
    return table


_CACHE: dict[str, Any] = {}


def __getattr__(name: str):
    if name == "METHODS":
        if "METHODS" not in _CACHE:
            _CACHE["METHODS"] = _load_methods()
        return _CACHE["METHODS"]
    raise AttributeError(f"module 'methods' has no attribute {name!r}")


def build_method(name: str, params: Any):
    """Instantiate the ``methods.<name>`` entry of params (a ``Method``); FRBenchError if unknown."""
    from core.errors import FRBenchError

    entries = getattr(params, "methods", None) or {}
    if name not in entries:
        raise FRBenchError(f"params: no method entry '{name}' under 'methods' "
                           f"(known: {', '.join(entries) or 'none'})")
    cfg = entries[name]
    table = __getattr__("METHODS")
    if cfg.arch not in table:
        raise FRBenchError(f"params: methods.{name}.arch: no implementation of {cfg.arch!r} "
                           f"(known: {', '.join(table)})")
    return table[cfg.arch](name=name, cfg=cfg, params=params)
