#!/usr/bin/env python3
"""Checks an msd HTML report as headless Chromium showed it (called by .ci/browser-test.sh).

Standard library only. Fails (exit status 1) when:
  * the viewer's status line (#msd-status) is not "ok" (a script error, no WebGL, bad data);
  * Chromium logged a console error or an uncaught exception;
  * the screenshot's 3D area (the canvas rectangle the page reports) is blank: fewer than 5 % of
    its pixels differ from the viewer's background, or they show no shading (a flat silhouette);
  * the page took 3 s or more from navigation start to its first 3D frame, or the file is 20 MB
    or more. (The browser's own start-up, timed separately, is printed but not held to a limit.)
"""
import argparse
import re
import struct
import sys
import zlib

BACKGROUND = (0x22, 0x26, 0x2E)


def read_png(path):
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG into (width, height, rows of RGB tuples)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dom", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--started", type=float, required=True)
    ap.add_argument("--finished", type=float, required=True)
    args = ap.parse_args()
    problems = []

    dom = open(args.dom, encoding="utf-8", errors="replace").read()
    m = re.search(r'<p id="msd-status"([^>]*)>(.*?)</p>', dom, re.S)
    if not m:
        problems.append("no #msd-status element in the loaded page (is it an msd report with meshes?)")
        attrs, text = {}, ""
    else:
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        text = m.group(2).strip()
    status = attrs.get("data-status", "missing")
    print(f"viewer status: {status}: {text}")
    if status != "ok":
        problems.append(f"the 3D view did not come up: {text}")

    log = open(args.log, encoding="utf-8", errors="replace").read().splitlines()
    console_errors = [l for l in log if re.search(r"Uncaught|:ERROR:CONSOLE|console\.error", l)]
    for l in console_errors:
        problems.append(f"console: {l.strip()}")

    seconds = args.finished - args.started
    size_mb = len(open(args.report, "rb").read()) / 1e6
    first_frame = attrs.get("data-first-frame-ms")
    print(f"first 3D frame {first_frame} ms after navigation start; whole headless run "
          f"(browser start, fresh profile, load, exit) {seconds:.2f} s; file {size_mb:.2f} MB")
    if first_frame is None or float(first_frame) >= 3000:
        problems.append(f"the report's first 3D frame came at {first_frame} ms (limit 3000 ms)")
    if size_mb >= 20.0:
        problems.append(f"the report is {size_mb:.1f} MB (limit 20 MB)")

    width, height, rows = read_png(args.screenshot)
    canvas = attrs.get("data-canvas")
    if canvas:
        x, y, w, h = (int(v) for v in canvas.split(","))
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        if x1 - x0 < 50 or y1 - y0 < 50:
            problems.append(f"the 3D area {canvas} is not within the {width}x{height} screenshot")
        else:
            differ, lum = 0, []
            total = 0
            for yy in range(y0, y1, 2):
                for xx in range(x0, x1, 2):
                    p = rows[yy][xx]
                    total += 1
                    if sum(abs(p[k] - BACKGROUND[k]) for k in range(3)) > 40:
                        differ += 1
                        lum.append(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            frac = differ / max(1, total)
            mean = sum(lum) / max(1, len(lum))
            sd = (sum((v - mean) ** 2 for v in lum) / max(1, len(lum))) ** 0.5
            print(f"3D area {x1 - x0}x{y1 - y0} px: {100 * frac:.1f} % mesh pixels, luminance sd {sd:.1f}")
            if frac < 0.05:
                problems.append(f"the 3D area is blank ({100 * frac:.2f} % of pixels differ from the background)")
            elif sd < 8.0:
                problems.append(f"the mesh shows no shading (luminance sd {sd:.1f})")

    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("browser check passed")


if __name__ == "__main__":
    main()
