#!/usr/bin/env python3
"""Install the project (editable, with the dev extras) into a venv: with uv when it can, else pip.

    python scripts/install_deps.py VENV/bin/python        # what `make install` runs
    FRBENCH_INSTALLER=pip python scripts/install_deps.py VENV/bin/python   # pip only

uv (from PyPI, installed into the venv first) resolves and installs the same packages several
times faster than pip (docs/performance.md). uv does not read pip's configuration, so the package
sources pip is configured with (``pip config list``: index URLs, find-links, constraint files,
certificate; on some machines the torch/torchvision wheels lie in a local index there, and
without it uv would download the multi-GB CUDA builds) are handed to it explicitly, local ones
first. If uv cannot be installed or fails, pip does the whole install as before.
facenet-pytorch pins an old torch, so it is installed without its dependencies either way.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODEPS = ["facenet-pytorch==2.6.0"]


def _quiet(cmd: list[str], env=None) -> int:
    """Run, dropping pip's 'WARNING: Location ... is ignored' noise (missing local index pages)."""
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    for line in p.stdout.splitlines():
        if not line.startswith("WARNING: Location"):
            print(line)
    return p.returncode


def pip_sources(py: str) -> dict[str, list[str]]:
    """Package sources from ``pip config list`` (files and PIP_* variables, as pip sees them)."""
    p = subprocess.run([py, "-m", "pip", "config", "list"], capture_output=True, text=True)
    return parse_pip_config(p.stdout)


def parse_pip_config(text: str) -> dict[str, list[str]]:
    """``key='value'`` lines of ``pip config list`` -> {index-url, extra-index-url, find-links,
    constraint, cert: [values]} (space-separated values split, duplicates dropped)."""
    out: dict[str, list[str]] = {"index-url": [], "extra-index-url": [], "find-links": [],
                                 "constraint": [], "cert": []}
    for line in text.splitlines():
        key, _, val = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name in out:
            for v in shlex.split(val.strip().strip("'\"")):
                if v not in out[name]:
                    out[name].append(v)
    return out


def _local_first(urls: list[str]) -> list[str]:
    return sorted(urls, key=lambda u: not (u.startswith("file:") or u.startswith("/")))


def uv_args(py: str, src: dict[str, list[str]]) -> list[str]:
    """uv options that reproduce pip's sources: local indexes first (uv takes a version from the
    first index that has it), the configured index, find-links and constraint files."""
    args = ["--python", py, "--index-strategy", "unsafe-best-match"]
    for u in _local_first(src["extra-index-url"] + src["index-url"][1:]):
        args += ["--extra-index-url", u]
    if src["index-url"]:
        args += ["--index-url", src["index-url"][0]]
    for f in src["find-links"]:
        args += ["--find-links", f]
    for c in src["constraint"]:
        args += ["--constraint", c]
    return args


def uv_install(py: str) -> bool:
    t0 = time.monotonic()
    if _quiet([py, "-m", "pip", "install", "-q", "uv"]) != 0:
        print("install: uv not available; installing with pip")
        return False
    uv = str(Path(py).parent / "uv")
    src = pip_sources(py)
    args = uv_args(py, src)
    env = dict(os.environ)
    if src["cert"] and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = src["cert"][0]
    # --compile-bytecode: pip writes .pyc files at install, uv does not by default; without them
    # every pipeline process recompiles torch, mlflow, ... from source wherever .pyc cannot be
    # written later (PYTHONDONTWRITEBYTECODE, read-only venv): ~13 s per process measured.
    for cmd in ([uv, "pip", "install", "-q", "--compile-bytecode", *args, "-e", ".[dev]"],
                [uv, "pip", "install", "-q", "--compile-bytecode", *args, "--no-deps", *NODEPS]):
        if _quiet(cmd, env) != 0:
            print("install: uv failed; installing with pip")
            return False
    print(f"install: done with uv in {time.monotonic() - t0:.0f} s")
    return True


def pip_install(py: str) -> int:
    rc = _quiet([py, "-m", "pip", "install", "-q", "-e", ".[dev]"])
    return rc or _quiet([py, "-m", "pip", "install", "-q", "--no-deps", *NODEPS])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    py = argv[0]
    if os.environ.get("FRBENCH_INSTALLER", "uv") != "pip" and uv_install(py):
        return 0
    return pip_install(py)


if __name__ == "__main__":
    sys.exit(main())
