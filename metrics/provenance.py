"""The comparability guard: results are compared or ranked only under one protocol and one set of
backbone weights.

A *row* is a ``summary.json`` dict (or anything with ``protocol``, optional ``protocol_settings``
and ``provenance``; extra keys such as ``method``/``set`` are carried along). Two rows are
comparable when they have the same protocol name, the same protocol settings (ignoring
``bootstrap_samples``, which only changes CIs; a row without settings is taken to use those
registered for its protocol in ``metrics.protocols``; every row is checked, whichever comes
first) and, for every backbone present in both, the same
provenance string (``file:...@sha256:...`` or ``random-init:seed=N``).
"""
from __future__ import annotations

import json
from typing import Iterable, Optional

from core.errors import FRBenchError

_IGNORED_SETTINGS = {"bootstrap_samples", "bootstrap_seed", "description", "lineage", "unranked"}


def _label(row: dict, i: int) -> str:
    bits = [str(row[k]) for k in ("method", "set") if k in row]
    return "/".join(bits) if bits else f"row {i}"


def _settings(row: dict) -> Optional[dict]:
    """The row's protocol settings that change numbers; a row without any is taken to use its
    registered protocol's settings (None when the protocol is not registered either)."""
    s = row.get("protocol_settings")
    if not s:
        from metrics.protocols import PROTOCOLS
        proto = PROTOCOLS.get(row.get("protocol"))
        if proto is None:
            return None
        s = proto.settings()
    # as stored in summary.json (tuples become lists), so both kinds of rows compare equal
    return json.loads(json.dumps({k: v for k, v in s.items() if k not in _IGNORED_SETTINGS}))


def check_comparable(rows: Iterable[dict]) -> list[dict]:
    """Return the rows if they may be compared; FRBenchError naming the first conflict otherwise."""
    rows = list(rows)
    if not rows:
        return rows
    for i, r in enumerate(rows):
        if "protocol" not in r or "provenance" not in r:
            raise FRBenchError(f"{_label(r, i)}: result has no protocol/provenance; re-run "
                               "`frbench evaluate` to produce a complete summary.json")
    first = rows[0]
    base: Optional[tuple[dict, str]] = None  # settings of the first row that has any, its label
    prov: dict[str, tuple[str, str]] = {}
    for i, r in enumerate(rows):
        if r["protocol"] != first["protocol"]:
            raise FRBenchError(f"refusing to compare results of different protocols: "
                               f"{_label(first, 0)} is '{first['protocol']}', {_label(r, i)} is "
                               f"'{r['protocol']}'")
        s = _settings(r)
        if s is not None and base is None:
            base = (s, _label(r, i))
        elif s is not None and s != base[0]:
            diff = sorted(k for k in set(s) | set(base[0]) if s.get(k) != base[0].get(k))
            raise FRBenchError(f"refusing to compare: protocol '{r['protocol']}' settings differ "
                               f"between {base[1]} and {_label(r, i)} ({', '.join(diff)})")
        for name, p in r["provenance"].items():
            if name in prov and prov[name][0] != p:
                raise FRBenchError(
                    f"refusing to compare results computed with different '{name}' weights: "
                    f"{prov[name][1]} used {prov[name][0]}, {_label(r, i)} used {p}")
            prov.setdefault(name, (p, _label(r, i)))
    return rows


def metric_value(row: dict, metric: str) -> Optional[float]:
    if metric in row.get("metrics", {}):
        return row["metrics"][metric]["mean"]
    return row.get("set_metrics", {}).get(metric)


def rank(rows: Iterable[dict], metric: str, higher_is_better: Optional[bool] = None) -> list[dict]:
    """Rows sorted best-first by ``metric`` after ``check_comparable``; rows without it go last."""
    rows = check_comparable(rows)
    if higher_is_better is None:
        from metrics import METRICS
        if metric not in METRICS:
            raise FRBenchError(f"unknown metric '{metric}'")
        higher_is_better = METRICS[metric].higher_is_better
    present = [r for r in rows if metric_value(r, metric) is not None]
    absent = [r for r in rows if metric_value(r, metric) is None]
    present.sort(key=lambda r: metric_value(r, metric), reverse=higher_is_better)
    return present + absent
