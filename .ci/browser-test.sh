#!/usr/bin/env bash
# Opens an msd HTML report in headless Chromium and checks that it works as a person would see it:
# the page loads offline with no script errors, the 3D view comes up (WebGL through SwiftShader, no
# GPU needed), and the screenshot's 3D area shows a mesh (not a blank canvas). Prints the time the
# page took to open and its size.
#
#   .ci/browser-test.sh REPORT.html [OUT_DIR]
#
# OUT_DIR (default: a temporary folder) receives screenshot.png, dom.html and chromium.log.
# Installs Chromium with apt-get when no chromium, chromium-browser or google-chrome is found.
set -euo pipefail
report=$(realpath "$1")
out=${2:-$(mktemp -d)}
mkdir -p "$out"
out=$(realpath "$out")

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    echo "installing chromium (apt-get)"
    sudo_=""
    if [ "$(id -u)" != 0 ]; then sudo_=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq chromium >/dev/null
    browser=chromium
fi
echo "browser: $($browser --version 2>/dev/null || echo "$browser")"

# A fresh profile each run, so no cache makes the page look faster than it is. Software WebGL:
# ANGLE on SwiftShader.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless=new --no-sandbox --no-first-run --no-default-browser-check --disable-extensions
       --user-data-dir="$profile" --use-angle=swiftshader --enable-unsafe-swiftshader
       --ignore-gpu-blocklist --window-size=1280,1000 --hide-scrollbars
       --enable-logging=stderr --v=0)

# 1. Load the page and dump the DOM once its load event has fired: the viewer runs before it, so
#    the status line says whether the 3D view came up. Timed, browser start included.
t0=$(date +%s.%N)
"$browser" "${flags[@]}" --dump-dom "file://$report" >"$out/dom.html" 2>"$out/chromium.log"
t1=$(date +%s.%N)
# 2. A screenshot, with a virtual-time budget so that every frame is drawn before it is taken.
"$browser" "${flags[@]}" --virtual-time-budget=5000 --screenshot="$out/screenshot.png" \
    "file://$report" >>"$out/chromium.log" 2>&1

python3 "$(dirname "$0")/browser_check.py" --dom "$out/dom.html" --log "$out/chromium.log" \
    --screenshot "$out/screenshot.png" --report "$report" --started "$t0" --finished "$t1"
echo "screenshot: $out/screenshot.png"
