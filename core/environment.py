"""Facts about the machine that numbers were computed on (recorded with every training and run)."""
from __future__ import annotations


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
    return {"torch": torch.__version__, "cpu": cpu_model(), **numerics_facts(),
            "cpu_flags_sha256": flags_hash(flags), "cpu_flags": " ".join(flags), "gpu": gpu}
