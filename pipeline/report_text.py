"""Text helpers shared by the report writers (markdown, LaTeX, HTML): number formatting, table
markup, the provenance key of a result row and the not-comparable notice."""
from __future__ import annotations

import hashlib
import json
import math

NOT_COMPARABLE = ("Built-in tier: synthetic 64 px faces, tiny models trained for minutes on CPU, "
                  "random-init metric backbones. These numbers are NOT comparable with published "
                  "numbers; the published columns are shown for reference and the differences "
                  "only exercise the format.")


def provenance_key(row: dict) -> str:
    """Short label of (protocol, settings, provenance): rows ranked together share it."""
    from metrics.provenance import _IGNORED_SETTINGS
    settings = {k: v for k, v in (row.get("protocol_settings") or {}).items()
                if k not in _IGNORED_SETTINGS}
    blob = json.dumps([row.get("protocol"), settings, row.get("provenance")], sort_keys=True)
    return f"{row.get('protocol')}#{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def fmt(v, metric: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        if metric == "kid" or abs(v) < 1:
            return f"{v:.4f}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def arrow(hib: bool) -> str:
    return "↑" if hib else "↓"


def md_table(header: list[str], body: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(out)


def provenance_lines(rows: list[dict]) -> list[str]:
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(provenance_key(r), r)
    out = []
    for k, r in seen.items():
        prov = ", ".join(f"{b}={p}" for b, p in sorted(r.get("provenance", {}).items()))
        out.append(f"`{k}`: protocol `{r.get('protocol')}`; backbones: {prov or 'none'}; "
                   f"comparable with published: {'yes' if r.get('comparable_with_published') else 'no'}")
    return out
