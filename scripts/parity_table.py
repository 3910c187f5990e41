"""Print the released-model parity figures: every comparison the parity tests make.

    python scripts/parity_table.py            # fast fixtures (the ones `make test` runs)
    python scripts/parity_table.py --slow     # also the full-size (1024 px) fixtures

Runs tests/test_released.py and tests/test_released_gfpgan_panini.py with pytest, records each
``official_fixtures.compare`` result (fixture, output, max abs diff, the output's largest
magnitude, what was compared) and prints one Markdown row per comparison. A failing test is
reported by pytest as usual and the exit status is pytest's.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Recorder:
    def __init__(self):
        self.rows = []

    def pytest_sessionstart(self, session):
        sys.path.insert(0, str(ROOT))
        from tests import official_fixtures as of
        original = of.compare

        def compare(name, out, ours, stored=None):
            r = original(name, out, ours, stored)
            self.rows.append((of.format_of(name) or "?", name, out, r))
            return r
        of.compare = compare


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slow", action="store_true", help="also the full-size fixtures")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import pytest
    rec = _Recorder()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "" if args.slow else "not slow",
                      str(ROOT / "tests/test_released.py"),
                      str(ROOT / "tests/test_released_gfpgan_panini.py")], plugins=[rec])
    print("\n| format | fixture | output | max abs diff | output max abs | ratio | compared |")
    print("|---|---|---|---|---|---|---|")
    worst: dict = {}   # one row per (format, fixture, output): the largest diff of its tests
    for fmt, name, out, r in rec.rows:
        k = (fmt, name, out)
        if k not in worst or r["max_abs_diff"] > worst[k]["max_abs_diff"]:
            worst[k] = r
    for (fmt, name, out), r in sorted(worst.items()):
        print(f"| {fmt} | {name} | {out} | {r['max_abs_diff']:.3g} | {r['abs_max']:.3g} | "
              f"{r['rel']:.2g} | {r['compared']} |")
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
