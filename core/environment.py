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


def environment() -> dict:
    """What the numbers were computed on: torch version, CPU model, torch threads, GPU. Trained
    weights (and so every metric after training) depend on it: the convolution kernels a CPU or
    GPU selects round differently, and GAN training amplifies the difference."""
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"torch": torch.__version__, "cpu": cpu, "torch_threads": torch.get_num_threads(),
            "gpu": gpu}
