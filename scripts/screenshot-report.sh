#!/usr/bin/env bash
# Renders a kvgo eval HTML report in headless Chromium and saves a PNG, to
# check that every chart is visible (the acceptance test of the report) and
# to refresh docs/eval-report.png.
#
#   scripts/screenshot-report.sh REPORT.html OUT.png [WIDTH [HEIGHT]]
#
# Chromium comes from Debian (apt-get install -y chromium). Every network
# feature is off: the report is self-contained and must render offline.
set -euo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
	exit 2
fi
html=$1
out=$2
width=${3:-1280}
height=${4:-3000}

browser=""
for b in chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null 2>&1; then
		browser=$b
		break
	fi
done
if [[ -z $browser ]]; then
	echo "$0: no chromium found (apt-get install -y chromium)" >&2
	exit 1
fi
if [[ ! -f $html ]]; then
	echo "$0: $html: no such file" >&2
	exit 1
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--hide-scrollbars --user-data-dir="$profile" \
	--window-size="$width,$height" --screenshot="$out_abs" "file://$abs" >/dev/null 2>&1

if [[ ! -s $out_abs ]]; then
	echo "$0: chromium wrote no screenshot" >&2
	exit 1
fi
echo "$out_abs"
