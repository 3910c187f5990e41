"""Pinned CPU numerics: the same bits from the built-in tier on any x86-64 machine with AVX2.

Every numeric library the pipeline runs picks its kernels from the CPU it finds (AVX-512 or
AVX2, vendor, core count), and kernels of different widths add in different orders: 20 Adam
steps of a small conv net already end in different weights, and 100 steps of GAN training turn
that into different PSNR/FID rows. ``pin()`` fixes every such choice to the AVX2 level (the
x86-64 level every server since ~2015 has) and to a fixed thread count, *before* the libraries
are imported (they read these settings once, at load or first use):

============================  =================  ==============================================
setting                       pinned value       what it fixes
============================  =================  ==============================================
``ATEN_CPU_CAPABILITY``       ``avx2``           torch's own vectorised kernels (element-wise,
                                                 reductions, norms, upsampling)
``ONEDNN_MAX_CPU_ISA``        ``AVX2``           oneDNN (torch's convolutions)
``MKL_CBWR``                  ``COMPATIBLE,``    MKL (torch's Linear/matmul, VML): MKL ignores
                              ``STRICT``         ``AVX2`` on non-Intel CPUs (``MKL_VERBOSE``
                                                 shows ``CNR:AUTO`` on AMD EPYC), COMPATIBLE is
                                                 honoured on every vendor; STRICT drops the
                                                 alignment dependence
``OPENBLAS_CORETYPE``         ``Haswell``        numpy's OpenBLAS (FID's eigh/svd, ``@``)
``NPY_DISABLE_CPU_FEATURES``  AVX-512 targets    numpy's own SIMD loops (exp, log, sin, ...)
``OPENCV_CPU_DISABLE``        AVX-512 targets    OpenCV's dispatched filters/resize (degradations)
``OMP/MKL/OPENBLAS_NUM_``     ``threads``        thread counts (reductions split per thread),
``THREADS``                                      not the machine's core count
torch                         ``threads``,       ``torch.set_num_threads``, one inter-op thread,
                              deterministic      ``use_deterministic_algorithms(True)``,
                                                 ``backends.mkldnn.deterministic``
torch (``numerics.onednn:``   oneDNN off         convolutions through ATen + MKL (optional:
``false``)                                       oneDNN's brgemm blocking reads cache sizes)
============================  =================  ==============================================

The torch settings are applied by an import hook the moment ``torch`` finishes importing, so the
caller stays torch-free. The switch: ``FRBENCH_NUMERICS=pinned|native`` (environment, wins) or
params.yaml ``numerics: {pinned: true, threads: 1}``. It is off for GPU runs (``device: cuda``),
where CPU kernels do not decide the numbers. ``docs/numerics.md`` has the measurements (which
stage and op differed under which knob, and the speed cost).
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger(__name__)

ENV_SWITCH = "FRBENCH_NUMERICS"
ENV_STATE = "FRBENCH_NUMERICS_STATE"      # what pin() decided, read by children and environment()
DEFAULT_THREADS = 1

# The three the issue names, plus the other libraries that dispatch on the CPU (see above).
TORCH_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_CBWR": "COMPATIBLE,STRICT"}
OTHER_ENV = {"OPENBLAS_CORETYPE": "Haswell",
             # OpenCV's own names (cv2.getCPUFeaturesLine()); silent where a feature is absent
             "OPENCV_CPU_DISABLE": "AVX512F,AVX512-SKX,AVX512-COMMON"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# numpy >= 2.4 groups its AVX-512 dispatch targets as X86_V4 (+ AVX512_ICL/SPR); older
# releases name each one. An unknown name only warns, so pick the scheme of the installed one.
_NPY_AVX512_NEW = "X86_V4 AVX512_ICL AVX512_SPR"
_NPY_AVX512_OLD = "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL " \
                  "AVX512_ICL AVX512_SPR"


@dataclass
class NumericsConfig:
    """params.yaml ``numerics``: ``pinned`` (CPU numerics fixed to AVX2 + ``threads`` threads +
    deterministic algorithms in every pipeline process; ignored on GPU runs) and ``threads``
    (torch/OpenMP/BLAS threads when pinned: a fixed number, not the machine's core count; 1 also
    removes every thread-split reduction). ``onednn: false`` (pinned only) routes torch's
    convolutions through ATen (im2col/col2im + MKL SGEMM under MKL's conditional numerical
    reproducibility, depthwise in ATen) instead of oneDNN, whose brgemm convolutions pick their
    blocking from the CPU's cache sizes; it costs ~2x CPU time in training (docs/numerics.md)."""
    pinned: bool = True
    threads: int = DEFAULT_THREADS
    onednn: bool = True

    def validate(self, where: str) -> None:
        from core.errors import FRBenchError
        if int(self.threads) < 1:
            raise FRBenchError(f"params: {where}.threads: must be >= 1 (got {self.threads})")


def _numpy_disable() -> str:
    try:
        from importlib.metadata import version
        major, minor = (int(x) for x in version("numpy").split(".")[:2])
    except Exception:  # noqa: BLE001  (no numpy metadata: the newer names)
        return _NPY_AVX512_NEW
    return _NPY_AVX512_NEW if (major, minor) >= (2, 4) else _NPY_AVX512_OLD


def pinned_env(threads: int = DEFAULT_THREADS) -> dict[str, str]:
    """Every environment variable ``pin`` sets (torch-free; also for subprocesses and tests)."""
    env = dict(TORCH_ENV)
    env.update(OTHER_ENV)
    env["NPY_DISABLE_CPU_FEATURES"] = _numpy_disable()
    env.update({v: str(int(threads)) for v in THREAD_VARS})
    return env


def _parse_switch(value: str) -> Optional[bool]:
    v = value.strip().lower()
    if v in ("pinned", "pin", "1", "true", "yes", "on"):
        return True
    if v in ("native", "0", "false", "no", "off"):
        return False
    from core.errors import FRBenchError
    raise FRBenchError(f"environment: {ENV_SWITCH}={value!r}: use 'pinned' or 'native'")


def _from_params(path: Optional[str]) -> tuple[Optional[NumericsConfig], str]:
    """(numerics section or None, device) of a params file; missing file -> (None, 'cpu')."""
    if not path or not os.path.isfile(path):
        return None, "cpu"
    from core.config import build, read_yaml
    data = read_yaml(path) or {}
    device = str(data.get("device", "cpu") or "cpu")
    sec = data.get("numerics")
    return (None if sec is None else build(NumericsConfig, sec, "numerics")), device


def decide(params_path: Optional[str] = "params.yaml", device: Optional[str] = None,
           environ=None) -> tuple[bool, NumericsConfig, str]:
    """(pinned?, the numerics section, why) from the environment switch, the params file and
    the device."""
    from core.errors import FRBenchError
    environ = os.environ if environ is None else environ
    try:
        cfg, params_device = _from_params(params_path)
    except FRBenchError:  # the command that reads params reports it; commands that don't, run
        cfg, params_device = None, "cpu"
    cfg = cfg or NumericsConfig()
    device = device or params_device
    if environ.get(ENV_SWITCH):
        on = _parse_switch(environ[ENV_SWITCH])
        why = f"{ENV_SWITCH}={environ[ENV_SWITCH]}"
    else:
        on = bool(cfg.pinned)
        why = f"{params_path}: numerics.pinned={cfg.pinned}" if params_path else "default"
    if on and not str(device).startswith("cpu"):
        on, why = False, f"device {device}: CPU numerics pinning does not apply to GPU runs"
    return on, cfg, why


# ----------------------------------------------------------------------------------------------
# torch settings, applied when torch finishes importing

def _apply_torch(torch, threads: int, onednn: bool = True) -> None:
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = bool(onednn)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # inter-op pool already started (torch imported and used before)
        pass
    torch.use_deterministic_algorithms(True)
    torch.backends.mkldnn.deterministic = True


class _TorchHook(importlib.abc.MetaPathFinder):
    """Runs ``_apply_torch`` right after ``import torch`` has finished, wherever it happens."""

    def __init__(self, threads: int, onednn: bool = True):
        self.threads, self.onednn = threads, onednn

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return spec
        loader, threads, onednn = spec.loader, self.threads, self.onednn
        exec_module = loader.exec_module

        def exec_and_pin(module):
            exec_module(module)
            _apply_torch(module, threads, onednn)
        loader.exec_module = exec_and_pin
        return spec


def pin(threads: int = DEFAULT_THREADS, onednn: bool = True) -> dict[str, str]:
    """Set the pinned environment and arrange the torch settings; returns what was set.

    Call before numpy/torch/cv2 are imported (the top of a process's entry point). Values already
    in the environment are overridden (a pinned run is the same everywhere, whatever the shell
    had). If torch is already imported, its settings apply at once but its CPU capability may
    already be fixed: a warning says so."""
    env = pinned_env(threads)
    late = [m for m in ("torch", "numpy", "cv2") if m in sys.modules]
    for k, v in env.items():
        if os.environ.get(k) not in (None, v):
            log.debug("numerics: %s=%s overridden by the pinned %s", k, os.environ[k], v)
        os.environ[k] = v
    os.environ[ENV_STATE] = f"pinned:{int(threads)}" + ("" if onednn else ":no-onednn")
    if late:
        log.warning("numerics pinned after %s was imported: its CPU kernels may already be "
                    "chosen", ", ".join(late))
    if "torch" in sys.modules:
        _apply_torch(sys.modules["torch"], threads, onednn)
    else:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchHook)]
        sys.meta_path.insert(0, _TorchHook(threads, onednn))
    return env


def setup(params_path: Optional[str] = "params.yaml", device: Optional[str] = None) -> bool:
    """The entry points' one call: decide (env switch > params > default pinned; off on GPU)
    and pin. Returns whether numerics are pinned."""
    on, cfg, why = decide(params_path, device)
    if on:
        pin(int(cfg.threads), bool(cfg.onednn))
        log.debug("numerics pinned (%d thread(s)): %s", cfg.threads, why)
    else:
        os.environ[ENV_STATE] = "native"
        log.debug("numerics native: %s", why)
    return on


def state() -> str:
    """'pinned' | 'native' (what this process's entry decided; 'native' when nobody pinned)."""
    return "pinned" if os.environ.get(ENV_STATE, "").startswith("pinned") else "native"


def active() -> bool:
    return state() == "pinned"


# ----------------------------------------------------------------------------------------------
# What the numbers were computed with (for core/environment.py)

def cpu_flags() -> list[str]:
    """The CPU's feature flags (``/proc/cpuinfo``), sorted; [] where unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("flags"):
                    return sorted(set(ln.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def flags_hash(flags: list[str]) -> str:
    return hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:16]


def numerics_facts() -> dict:
    """Effective ISA, threads and the pinning state of this process (imports torch)."""
    import torch
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        isa = "unknown"
    return {"numerics": state(), "isa": isa,
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
            "mkl_cbwr": os.environ.get("MKL_CBWR", "native"),
            "torch_threads": torch.get_num_threads(),
            "onednn": bool(torch.backends.mkldnn.enabled),
            "deterministic": bool(torch.are_deterministic_algorithms_enabled())}
