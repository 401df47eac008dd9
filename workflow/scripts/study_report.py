#!/usr/bin/env python3
"""Aggregate the workflow's per-case JSON into one study report: Markdown, CSV and JSON.

    study_report.py --results DIR --cases NAME=INPUT ... [--references NAME=REF ...]
                    [--implanted NAME ...] [--version-file F] --md OUT --csv OUT --json OUT

Reads, for each case, what the workflow wrote under DIR/cases/NAME/:
  labels.json   `msd info --json` of the label volume (grid, spacing; the mean label gives the bone volume)
  skull.json    `msd info --json` of the skull mesh (triangles, watertight, enclosed volume)
  eval.json     `msd eval --json` against the reference (cases with a reference)
  implant/implant.json   what scripts/implant_case.py recorded (cases with an implant)
and DIR/benchmarks/RULE/NAME.tsv (Snakemake's benchmark: seconds, max RSS) for the run times.
A file that should be there and is not, or does not parse, is an error naming the file: the report
never silently drops a case.
"""
import argparse
import csv
import json
import math
import os
import sys

EVAL_METRICS = ("dice", "hd95_mm", "mad_mm", "surface_dice", "sensitivity", "precision",
                "volume_difference_percent")
COLUMNS = (
    ["case", "input", "grid_xyz", "spacing_mm", "bone_ml", "mesh_triangles", "mesh_watertight",
     "mesh_volume_ml", "reference"]
    + list(EVAL_METRICS)
    + ["implant_status", "implant_volume_ml", "implant_method", "implant_message",
       "segment_s", "segment_max_rss_mb", "mesh_s", "evaluate_s", "implant_s"]
)
SUMMARY_METRICS = ("bone_ml", "mesh_volume_ml", "implant_volume_ml", "segment_s") + EVAL_METRICS


def fail(msg):
    sys.exit(f"study_report.py: {msg}")


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        fail(f"missing {path} (did its rule run?)")
    except json.JSONDecodeError as e:
        fail(f"{path} is not valid JSON: {e}")


def load_benchmark(results, rule, case):
    """(seconds, max RSS in MB) from Snakemake's benchmark TSV, or (None, None) when absent."""
    path = os.path.join(results, "benchmarks", rule, f"{case}.tsv")
    if not os.path.isfile(path):
        return None, None
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        fail(f"{path} has no rows")

    def num(key):
        v = rows[-1].get(key, "NA")
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    return num("s"), num("max_rss")


def pairs(items, what):
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--{what} takes NAME=PATH, got '{item}'")
        out[name] = value
    return out


def case_row(results, case, scan, ref, implanted):
    cdir = os.path.join(results, "cases", case)
    labels = load_json(os.path.join(cdir, "labels.json"))
    mesh = load_json(os.path.join(cdir, "skull.json"))
    shape = labels.get("shape_zyx")
    spacing = labels.get("spacing_mm_xyz")
    if not shape or not spacing:
        fail(f"{cdir}/labels.json has no shape_zyx/spacing_mm_xyz")
    bone_ml = None
    # A 0/1 label volume: the mean is the bone fraction of the grid.
    if labels.get("hu_max") is not None and labels["hu_max"] <= 1 and labels.get("hu_mean") is not None:
        bone_ml = labels["hu_mean"] * math.prod(shape) * math.prod(spacing) / 1000.0
    row = {
        "case": case,
        "input": scan,
        "grid_xyz": "x".join(str(n) for n in reversed(shape)),
        "spacing_mm": "x".join(f"{s:.4g}" for s in spacing),
        "bone_ml": bone_ml,
        "mesh_triangles": mesh.get("triangles"),
        "mesh_watertight": mesh.get("watertight"),
        "mesh_volume_ml": mesh.get("enclosed_volume_ml"),
        "reference": ref or "",
    }
    if ref:
        ev = load_json(os.path.join(cdir, "eval.json"))
        cases = ev.get("cases") or []
        if len(cases) != 1:
            fail(f"{cdir}/eval.json has {len(cases)} cases, expected 1")
        for m in EVAL_METRICS:
            row[m] = cases[0].get(m)
    if implanted:
        imp = load_json(os.path.join(cdir, "implant", "implant.json"))
        row["implant_status"] = imp.get("status")
        row["implant_method"] = imp.get("method")
        row["implant_message"] = imp.get("message") if imp.get("status") != "ok" else ""
        row["implant_volume_ml"] = (imp.get("mesh") or {}).get("enclosed_volume_ml")
    row["segment_s"], rss = load_benchmark(results, "segment", case)
    row["segment_max_rss_mb"] = rss
    row["mesh_s"], _ = load_benchmark(results, "mesh", case)
    row["evaluate_s"], _ = load_benchmark(results, "evaluate", case)
    row["implant_s"], _ = load_benchmark(results, "implant", case)
    return row


def stats(values):
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not vals:
        return None
    n = len(vals)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "sd": sd, "min": min(vals), "max": max(vals)}


def fmt(v, digits=3):
    if v is None or v == "":
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_markdown(path, report):
    rows = report["cases"]
    lines = [
        "# msd study report",
        "",
        f"{report['n_cases']} cases, {report['n_evaluated']} evaluated against a reference"
        + (f", implants designed for {report['implants']['ok']} of {report['implants']['requested']}"
           if report["implants"]["requested"] else "")
        + f". msd: {report['msd_version'] or 'unknown'}.",
        "",
        "## Cases",
        "",
        "| case | grid (x×y×z) | spacing (mm) | bone (ml) | mesh triangles | watertight | Dice | HD95 (mm) "
        "| MAD (mm) | surface Dice | implant | implant (ml) | segment (s) |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        implant = r.get("implant_status") or "–"
        if implant == "failed":
            implant = f"failed: {r.get('implant_message', '')}".replace("|", "\\|")
        lines.append(
            f"| {r['case']} | {r['grid_xyz'].replace('x', '×')} | {r['spacing_mm'].replace('x', '×')} "
            f"| {fmt(r['bone_ml'], 1)} | {fmt(r['mesh_triangles'])} | {fmt(r['mesh_watertight'])} "
            f"| {fmt(r.get('dice'))} | {fmt(r.get('hd95_mm'), 2)} | {fmt(r.get('mad_mm'), 2)} "
            f"| {fmt(r.get('surface_dice'))} | {implant} | {fmt(r.get('implant_volume_ml'), 1)} "
            f"| {fmt(r.get('segment_s'), 1)} |"
        )
    lines += ["", "## Summary", "", "| measure | n | mean ± sd | min | max |", "|---|---:|---:|---:|---:|"]
    for name, s in report["summary"].items():
        lines.append(f"| {name} | {s['n']} | {s['mean']:.3f} ± {s['sd']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
    lines += ["", "Per-case files: `cases/<case>/` beside this report's folder; the CSV and JSON hold every column.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the workflow's output_dir")
    ap.add_argument("--cases", nargs="+", required=True, metavar="NAME=INPUT")
    ap.add_argument("--references", nargs="*", default=[], metavar="NAME=REF")
    ap.add_argument("--implanted", nargs="*", default=[], metavar="NAME")
    ap.add_argument("--version-file")
    ap.add_argument("--md", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    cases = pairs(args.cases, "cases")
    refs = pairs(args.references, "references")
    for name in list(refs) + args.implanted:
        if name not in cases:
            fail(f"'{name}' is not one of the cases")
    version = None
    if args.version_file:
        with open(args.version_file) as f:
            version = f.read().strip()

    rows = [case_row(args.results, c, scan, refs.get(c), c in args.implanted) for c, scan in cases.items()]
    summary = {}
    for m in SUMMARY_METRICS:
        s = stats(r.get(m) for r in rows)
        if s:
            summary[m] = s
    report = {
        "msd_version": version,
        "n_cases": len(rows),
        "n_evaluated": sum(1 for r in rows if r["reference"]),
        "implants": {
            "requested": len(args.implanted),
            "ok": sum(1 for r in rows if r.get("implant_status") == "ok"),
            "failed": sum(1 for r in rows if r.get("implant_status") == "failed"),
        },
        "summary": summary,
        "cases": rows,
    }
    for path in (args.md, args.csv, args.json):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    write_markdown(args.md, report)
    print(f"study report: {len(rows)} cases -> {args.md}, {args.csv}, {args.json}")


if __name__ == "__main__":
    main()
