"""Facts about the machine that numbers were computed on (recorded with every training and run),
and the check of a device name."""
from __future__ import annotations

import re

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device(name, where: str = "device", available: bool = False) -> str:
    """``name`` if it is a device the suite runs on (``cpu``, ``cuda``, ``cuda:N``), else
    FRBenchError naming ``where`` (the flag or params key). ``available``: also require CUDA to
    be present for a cuda device (imports torch)."""
    from core.errors import FRBenchError

    if not isinstance(name, str) or not _DEVICE.match(name):
        raise FRBenchError(f"{where}: {name!r} is not a device; use cpu, cuda or cuda:N")
    if available and name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise FRBenchError(f"{where}: {name} requested but CUDA is not available on this "
                               "machine; use cpu")
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise FRBenchError(f"{where}: {name} requested but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
    return name


def cpu_model() -> str:
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return cpu


def numeric_libs() -> str:
    """Versions of the other libraries whose kernels decide numbers (numpy, scipy, OpenCV,
    Pillow): their SIMD code changes between releases."""
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for name, dist in (("numpy", "numpy"), ("scipy", "scipy"), ("opencv", "opencv-python-headless"),
                       ("pillow", "pillow")):
        try:
            out.append(f"{name}={version(dist)}")
        except PackageNotFoundError:
            if name == "opencv":
                try:
                    out.append(f"opencv={version('opencv-python')}")
                except PackageNotFoundError:
                    pass
    return " ".join(out)


def environment() -> dict:
    """What the numbers were computed on: torch version, CPU model and its full feature flags
    (with a short hash to compare machines at a glance), the numerics state (``pinned`` or
    ``native``, core/numerics.py), the effective torch CPU ISA, oneDNN/MKL settings, torch
    threads and GPU. Trained weights (and so every metric after training) depend on them: the
    kernels a CPU selects round differently, and GAN training amplifies the difference."""
    import torch

    from core.numerics import cpu_flags, flags_hash, numerics_facts
    flags = cpu_flags()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"torch": torch.__version__, "libs": numeric_libs(), "cpu": cpu_model(),
            **numerics_facts(),
            "cpu_flags_sha256": flags_hash(flags), "cpu_flags": " ".join(flags), "gpu": gpu}
