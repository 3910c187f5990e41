"""Facts about the machine that numbers were computed on (recorded with every training and run)."""
from __future__ import annotations


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
