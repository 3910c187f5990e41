#!/usr/bin/env python3
"""Per-stage wall times of a `dvc repro` (cold or no-op), read off DVC's own output.

    python scripts/repro_times.py clone DIR [--venv PATH]   # fresh clone: make install, cold
                                                          # dvc repro, then a no-op dvc repro
    python scripts/repro_times.py here [--force]          # this checkout: dvc repro (-f: every
                                                          # stage, no run-cache), then a no-op one

`clone` is the cold measurement of the README ("make repro" on a fresh machine): it clones the
current HEAD into DIR (which must not exist), times `make install` (skipped with --venv, which
runs DIR's code with an existing venv through PYTHONPATH instead), then `dvc repro` and a second,
no-op `dvc repro`. Each line DVC prints is stamped as it arrives (the child runs unbuffered); a
stage's time runs from its "Running stage" / "didn't change" line to the next such line (its
command, hashing its outputs and the lock-file update included). Prints one markdown table per
run and writes them with the raw numbers to DIR/repro_times.json (or ./repro_times.json).
Measure on a quiet machine: other jobs on the same cores stretch every number.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

START = [(re.compile(r"^Running stage '(?P<s>[^']+)'"), "ran"),
         (re.compile(r"^Stage '(?P<s>[^']+)' didn't change"), "skipped"),
         (re.compile(r"^Stage '(?P<s>[^']+)' is cached"), "run-cache")]


def timed(cmd: list[str], cwd: Path, env: dict, log) -> tuple[float, list[str], int]:
    """Run ``cmd``; returns (wall seconds, ['<t> <line>'...], exit code) with t from the start."""
    t0 = time.monotonic()
    lines = []
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, bufsize=1)
    for line in p.stdout:
        t = time.monotonic() - t0
        lines.append(f"{t:.3f} {line.rstrip()}")
        log.write(f"{t:9.3f} {line}")
        log.flush()
    rc = p.wait()
    return time.monotonic() - t0, lines, rc


def stage_times(lines: list[str], total: float) -> list[dict]:
    marks = []
    for rec in lines:
        t, _, text = rec.partition(" ")
        for rx, status in START:
            m = rx.match(text.strip())
            if m:
                marks.append((float(t), m.group("s"), status))
    out = []
    for i, (t, stage, status) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else total
        out.append({"stage": stage, "status": status, "seconds": round(end - t, 2)})
    return out


def table(title: str, total: float, stages: list[dict], extra: dict | None = None) -> str:
    rows = [f"### {title}", "", "| stage | status | seconds |", "|---|---|---:|"]
    for k, v in (extra or {}).items():
        rows.append(f"| {k} | | {v:.1f} |")
    for s in stages:
        rows.append(f"| {s['stage']} | {s['status']} | {s['seconds']:.1f} |")
    groups: dict[str, float] = {}
    for s in stages:
        groups[s["stage"].split("@")[0]] = groups.get(s["stage"].split("@")[0], 0.0) + s["seconds"]
    first = stages[0]["seconds"] if stages else 0.0
    rows.append(f"| **dvc repro (wall)** | | **{total:.1f}** |")
    rows.append("")
    rows.append("By stage family: " + ", ".join(f"{k} {v:.1f} s" for k, v in groups.items())
                + f"; DVC start-up before the first stage {total - sum(s['seconds'] for s in stages):.1f} s"
                + (f" (first stage {first:.1f} s)" if stages else ""))
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("clone", help="fresh clone of HEAD into DIR, then install + cold + no-op")
    c.add_argument("dir")
    c.add_argument("--venv", default=None,
                   help="use this venv instead of `make install` (runs DIR's code via PYTHONPATH)")
    h = sub.add_parser("here", help="this checkout: dvc repro, then a no-op dvc repro")
    h.add_argument("--force", action="store_true", help="dvc repro -f --no-run-cache first")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    report, result = [], {}
    if args.mode == "clone":
        work = Path(args.dir).resolve()
        if work.exists():
            sys.exit(f"error: {work}: already exists; give a new folder")
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(work)], check=True)
        log = open(work / "repro_times.log", "w")
        if args.venv:
            venv = Path(args.venv).resolve()
            env["PYTHONPATH"] = str(work)
        else:
            venv = work / ".venv"
            t, _, rc = timed(["make", "install"], work, env, log)
            result["install_s"] = round(t, 1)
            if rc:
                sys.exit(f"error: make install failed (exit {rc}); see {work}/repro_times.log")
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
        env["VIRTUAL_ENV"] = str(venv)
        runs = [("cold dvc repro", ["dvc", "repro"]), ("no-op dvc repro", ["dvc", "repro"])]
        out_json = work / "repro_times.json"
    else:
        work = repo
        log = open(work / "repro_times.log", "w")
        runs = ([("forced dvc repro", ["dvc", "repro", "-f", "--no-run-cache"])] if args.force
                else [("dvc repro", ["dvc", "repro"])]) + [("no-op dvc repro", ["dvc", "repro"])]
        out_json = work / "repro_times.json"
    for title, cmd in runs:
        total, lines, rc = timed(cmd, work, env, log)
        stages = stage_times(lines, total)
        result[title] = {"total_s": round(total, 1), "exit": rc, "stages": stages}
        extra = {"make install": result["install_s"]} if "install_s" in result and \
            title.startswith("cold") else None
        report.append(table(f"{title} (exit {rc})", total, stages, extra))
        if rc:
            break
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(report))
    print(f"(raw numbers: {out_json}; DVC output: {work / 'repro_times.log'})")
    return 0 if all(v.get("exit", 0) == 0 for v in result.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
