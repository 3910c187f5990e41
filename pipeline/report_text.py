"""Text helpers shared by the report writers (markdown, LaTeX, HTML): number formatting, table
markup, LaTeX escaping, the provenance key of a result row and the not-comparable notice."""
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


def fmt_pm(v, half, metric: str = "") -> str:
    """``fmt(v)`` with `` ± half`` at the value's precision (no half: the value alone)."""
    base = fmt(v, metric)
    if base in ("–", "inf") or half is None or (isinstance(half, float) and not math.isfinite(half)):
        return base
    dec = len(base.split(".")[1]) if "." in base else 0
    return f"{base} ± {half:.{dec}f}"


def arrow(hib: bool) -> str:
    return "↑" if hib else "↓"


def md_table(header: list[str], body: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(out)


def provenance_groups(rows: list[dict]) -> list[dict]:
    """One entry per comparability group: ``key``, ``protocol``, ``backbones`` (sorted (name,
    provenance) pairs), ``comparable`` (bool). Each writer adds its own markup."""
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(provenance_key(r), r)
    return [{"key": k, "protocol": str(r.get("protocol")),
             "backbones": sorted((r.get("provenance") or {}).items()),
             "comparable": bool(r.get("comparable_with_published"))} for k, r in seen.items()]


def provenance_lines(rows: list[dict]) -> list[str]:
    """Markdown lines (inline code in backticks) of ``provenance_groups``."""
    out = []
    for g in provenance_groups(rows):
        prov = ", ".join(f"{b}={p}" for b, p in g["backbones"])
        out.append(f"`{g['key']}`: protocol `{g['protocol']}`; backbones: {prov or 'none'}; "
                   f"comparable with published: {'yes' if g['comparable'] else 'no'}")
    return out


# LaTeX: plain pdflatex + booktabs. Every character that is special to TeX is escaped and every
# non-ASCII character is replaced by its LaTeX spelling, so the output is pure ASCII.
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                "|": r"\textbar{}"}
_TEX_UNICODE = {"–": "--", "—": "---", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$",
                "θ": r"$\theta$", "σ": r"$\sigma$", "δ": r"$\delta$", "×": r"$\times$",
                "…": r"\ldots{}", "≈": r"$\approx$", "°": r"$^\circ$", "†": r"\dag{}",
                "→": r"$\rightarrow$", "’": "'", "‘": "`", "“": "``", "”": "''", "é": r"\'e",
                "ö": r'\"o', "ü": r'\"u', "−": "-", "≤": r"$\leq$", "≥": r"$\geq$",
                "∈": r"$\in$", "·": r"$\cdot$", "\u00a0": "~"}


def tex_escape(text) -> str:
    """``text`` as LaTeX source: specials escaped, known non-ASCII characters spelled out, any
    other non-ASCII character replaced by ``?`` (so the result always compiles with pdflatex)."""
    out = []
    for ch in str(text):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def tex_tabular(header: list[str], body: list[list[str]], align: str, *, caption: str = "",
                label: str = "", notes: list[str] = (), raw_header: bool = False,
                midrules: list[int] = ()) -> str:
    """A booktabs ``table`` float: escaped cells (the header too unless ``raw_header``), the
    caption above, ``notes`` as escaped lines below the tabular; ``midrules``: body row indices
    before which a ``\\midrule`` separates groups."""
    if len(align) != len(header):
        raise ValueError(f"align '{align}' has {len(align)} columns, header {len(header)}")
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small"]
    if caption:
        lines.append(r"\caption{" + tex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [r"\begin{tabular}{" + align + "}", r"\toprule",
              " & ".join(h if raw_header else tex_escape(h) for h in header) + r" \\",
              r"\midrule"]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, header {len(header)}")
        if i in midrules and i:
            lines.append(r"\midrule")
        lines.append(" & ".join(tex_escape(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    for n in notes:
        lines.append(r"\par\smallskip{\footnotesize " + tex_escape(n) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
