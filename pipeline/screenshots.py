"""Screenshots of reports/index.html (and drilldown.html) with headless Chromium (``reports/screenshots/*.png``).

The report stage calls ``take`` after writing index.html. Chromium is optional: Debian's
``chromium`` package (``/usr/bin/chromium``) or any ``chromium``/``chromium-browser``/
``google-chrome`` on PATH, or the binary named by ``FRBENCH_CHROMIUM``. Without one the folder
holds only ``README.md`` saying why (stale PNGs of an earlier run never survive: the folder is
rebuilt as a whole). Chromium runs offline (``--disable-background-networking`` and friends) with
a fresh profile in a temporary folder, and is killed after ``timeout`` seconds.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

# (file name, section id or page, window height), 1280 px wide: ``index.html#only-<id>`` shows
# the page from that section on (inline JS hides what comes before; headless Chromium's
# screenshot does not follow a plain #fragment scroll); ``drilldown.html`` is its own page
SHOTS = (("report_top.png", "", 1400),
         ("report_leaderboard.png", "leaderboard", 1400),
         ("report_plots.png", "plots", 1600),
         ("report_samples.png", "samples", 1400),
         ("report_drilldown.png", "drilldown.html", 1400),          # the drill-down page
         ("report_zoom.png", "drilldown.html#zoom-first", 1000))    # its zoom + slider view

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1", "--mute-audio")


def find_chromium() -> Optional[str]:
    env = os.environ.get("FRBENCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _url(html: Path, frag: str) -> str:
    """The page of a ``SHOTS`` entry: ``index.html`` from a section on (``#only-<id>``), or
    another page of the report beside it (``<page>.html[#fragment]``)."""
    if ".html" in frag:
        page, _, h = frag.partition("#")
        return (html.parent / page).as_uri() + (f"#{h}" if h else "")
    return html.as_uri() + (f"#only-{frag}" if frag else "")


def _shot(chromium: str, url: str, out: Path, height: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="frbench-chromium-") as prof:
        cmd = [chromium, *FLAGS, f"--user-data-dir={prof}", f"--window-size=1280,{height}",
               "--virtual-time-budget=3000", f"--screenshot={out}", url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 or not out.is_file():
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"chromium exited {r.returncode}: {' | '.join(tail)}")


# files this module writes, and those of the hand-made screenshots of earlier versions: a
# folder holding only these (and no marker) is an earlier output of this step
OWN_FILES = {n for n, _, _ in SHOTS} | {"README.md", "report_top.png", "report_samples.png"}


def check_out(out_dir: Path) -> None:
    """``out_dir`` may be (re)written: absent, empty, marked by frbench as a report output, or
    holding only the screenshot files of an earlier run (then marked now). Anything else is
    an FRBenchError naming the folder: a folder frbench did not make is never replaced."""
    from core.errors import FRBenchError
    from core.outputs import MARKER, made_by_suite, write_marker
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        if out_dir.exists():
            raise FRBenchError(f"{out_dir}: exists and is not a folder; move it away")
        return
    names = {p.name for p in out_dir.iterdir() if not p.name.startswith(".")}
    kind = made_by_suite(out_dir)
    if kind is None and names and names <= OWN_FILES and not (out_dir / MARKER).exists():
        write_marker(out_dir, "report")     # screenshots of an earlier version: ours
        kind = "report"
    if names and kind != "report":
        raise FRBenchError(f"{out_dir}: exists and was not made by the report's screenshot step; "
                           "it is never replaced: move it away or pass --no-screenshots")


def take(html: Path, out_dir: Path, timeout: float = 90.0) -> list[Path]:
    """Screenshot ``html`` into ``out_dir`` (rebuilt whole, ``check_out`` first); returns the
    PNGs written. Without Chromium, or when it fails, ``out_dir`` holds a README.md saying so
    and nothing else."""
    from core.outputs import atomic_dir

    check_out(out_dir)
    html = Path(html).resolve()
    chromium = find_chromium()
    written: list[Path] = []
    with atomic_dir(out_dir, "report") as tmp:
        note = None
        if chromium is None:
            note = ("No screenshots: headless Chromium was not found (Debian: `apt-get install "
                    "chromium`). Open `../index.html` in a browser instead.")
        else:
            try:
                for name, frag, height in SHOTS:
                    url = _url(html, frag)
                    _shot(chromium, url, tmp / name, height, timeout)
                    written.append(Path(out_dir) / name)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                for f in tmp.glob("*.png"):
                    f.unlink()
                written = []
                note = f"No screenshots: Chromium ({chromium}) failed: {e}"
        if note:
            log.warning("%s", note)
            (tmp / "README.md").write_text(note + "\n", encoding="utf-8")
        else:
            (tmp / "README.md").write_text(
                "Screenshots of `../index.html` and `../drilldown.html`, taken by the report "
                "stage with headless "
                f"Chromium at 1280 px width: {', '.join(n for n, _, _ in SHOTS)}.\n",
                encoding="utf-8")
    if Path(out_dir).is_dir():
        os.chmod(out_dir, 0o755)   # the temporary folder it was renamed from is private
    return written
