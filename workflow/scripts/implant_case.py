#!/usr/bin/env python3
"""Design one case's implant with `msd implant` and record the outcome as JSON.

    implant_case.py --msd MSD --skull labels.nii.gz --out-dir DIR [--point X,Y,Z]
                    [--on-error fail|record] [--extra-args "..."]

Writes DIR/implant.nii.gz, DIR/implant.stl (when msd designs one), DIR/msd_implant.txt (what msd
printed) and DIR/implant.json:

    {"status": "ok" | "failed", "exit_code": int, "message": str,
     "defect": str|null, "method": str|null, "summary": str|null, "mesh": {msd info --json}|null}

With --on-error fail (the default) a failed design exits non-zero after writing implant.json, so
Snakemake marks the job failed; with --on-error record it exits 0, and the study report lists the
case as failed with msd's message (e.g. "2 candidate defects ... pass a point").
"""
import argparse
import json
import os
import shlex
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--msd", required=True)
    ap.add_argument("--skull", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--point", default="")
    ap.add_argument("--on-error", choices=("fail", "record"), default="fail")
    ap.add_argument("--extra-args", default="")
    args = ap.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    implant = os.path.join(args.out_dir, "implant.nii.gz")
    mesh = os.path.join(args.out_dir, "implant.stl")
    cmd = [args.msd, "implant", "--skull", args.skull, "--out", implant, "--mesh", mesh]
    if args.point:
        cmd.append(f"--point={args.point}")
    cmd += shlex.split(args.extra_args)
    print("+", shlex.join(cmd), flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True)
    output = run.stdout + run.stderr
    with open(os.path.join(args.out_dir, "msd_implant.txt"), "w") as f:
        f.write(output)
    sys.stdout.write(output)

    def line(prefix):
        return next((l.strip() for l in run.stdout.splitlines() if l.startswith(prefix)), None)

    record = {
        "status": "ok" if run.returncode == 0 else "failed",
        "exit_code": run.returncode,
        "message": (run.stderr.strip().splitlines() or [""])[-1],
        "point": args.point or None,
        "defect": line("defect at"),
        "method": (line("method:") or "").removeprefix("method:").strip() or None,
        "summary": line("implant:"),
        "mesh": None,
    }
    if run.returncode == 0:
        for path in (implant, mesh):
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                sys.exit(f"implant_case.py: msd implant exited 0 but wrote no {path}")
        info = subprocess.run([args.msd, "info", mesh, "--json"], capture_output=True, text=True)
        if info.returncode != 0:
            sys.exit(f"implant_case.py: msd info {mesh} failed: {info.stderr.strip()}")
        record["mesh"] = json.loads(info.stdout)
    with open(os.path.join(args.out_dir, "implant.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    if run.returncode != 0 and args.on_error == "fail":
        sys.exit(
            f"implant_case.py: msd implant failed (exit {run.returncode}): {record['message']}\n"
            "(set implant.on_error: record to list such cases as failed in the report instead, or give the "
            "case a point in implant.points)"
        )


if __name__ == "__main__":
    main()
