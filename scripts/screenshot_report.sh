#!/usr/bin/env bash
# Render reports/index.html in headless Chromium at a 1280 px wide window: a full-page
# screenshot (OUT/report_full.png) and a check that nothing needs sideways scrolling
# (document scrollWidth <= clientWidth). Needs `chromium` (Debian: apt-get install chromium).
#   usage: scripts/screenshot_report.sh [OUT_DIR]   (default /tmp/frbench-screenshots)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/frbench-screenshots}
mkdir -p "$OUT"
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
PAGE="$OUT/page.html"
# probe copy: writes the page's widths into a body attribute that --dump-dom prints
sed 's#</body>#<script>setTimeout(function(){var e=document.documentElement;document.body.setAttribute("data-w",e.scrollWidth+" "+e.clientWidth+" "+e.scrollHeight)},300)</script></body>#' \
  reports/index.html > "$PAGE"
read -r SW CW SH < <("$BROWSER" --headless --no-sandbox --disable-gpu --window-size=1280,900 \
  --virtual-time-budget=3000 --dump-dom "file://$PAGE" 2>/dev/null | grep -o 'data-w="[^"]*"' | \
  sed 's/data-w="//; s/"//')
echo "scrollWidth=$SW clientWidth=$CW pageHeight=$SH"
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,"$SH" \
  --virtual-time-budget=3000 --screenshot="$OUT/report_full.png" "file://$PAGE" 2>/dev/null
echo "wrote $OUT/report_full.png"
if [ "$SW" -gt "$CW" ]; then echo "FAIL: the page scrolls sideways at 1280 px"; exit 1; fi
echo "OK: no horizontal scrolling at 1280 px"
