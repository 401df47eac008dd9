#!/usr/bin/env bash
# Test the msd study workflow locally (no Slurm): snakemake --cores N on a folder of mixed cases.
#
#   workflow/test/local.sh [--msd PATH] [--cores N] [--keep]
#
# Cases: 2 small NIfTI heads made from ../shared/data/cthead (make_cases.py) with reference labels,
# one NRRD (msd convert of a third) with its reference, and, when ../shared has it, a DICOM series
# folder (the CT head phantom of dicom-conformance, no reference). Runs the workflow with evaluation
# and an implant for the craniectomy case, checks labels, watertight meshes, the report's rows and
# Dice, then checks that a second run has nothing to do. Needs python3 (a venv with
# workflow/requirements.txt is made in ~/.cache/msd/ when missing).
# Environment: MSD, MSD_SHARED, MSD_WORKFLOW_VENV as for slurm_local.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
t0=$SECONDS
log() { echo "[local $((SECONDS - t0)) s] $*"; }
die() { echo "local.sh: FAILED: $*" >&2; exit 1; }

keep=0
cores=2
msd=${MSD:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --msd) msd=$2; shift 2 ;;
        --cores) cores=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
# shellcheck source=workflow/test/common.sh
. "$here/common.sh"
msd=$(resolve_msd "$msd")
shared=${MSD_SHARED:-$repo/../shared}
[ -f "$shared/data/cthead/ct.nii.gz" ] || die "no $shared/data/cthead/ct.nii.gz (the shared data; set MSD_SHARED)"

workflow_venv
log "msd: $msd ($("$msd" -V)); snakemake $(snakemake --version)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/msd-workflow.XXXXXX")
cleanup() {
    local rc=$?
    if [ "$keep" -eq 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    echo "[local $((SECONDS - t0)) s] exit status $rc"
}
trap cleanup EXIT

cases="$tmp/cases"
refs="$tmp/refs"
python "$here/make_cases.py" --cthead "$shared/data/cthead" --cases "$cases" --refs "$refs"
# One case as NRRD: the workflow must take it like the NIfTI ones.
"$msd" --quiet convert "$cases/head_upper.nii.gz" "$cases/head_upper_nrrd.nrrd"
rm "$cases/head_upper.nii.gz"
mv "$refs/head_upper.nii.gz" "$refs/head_upper_nrrd.nii.gz"
expected="head_defect head_full head_upper_nrrd"
evaluated=$expected
dicom="$shared/data/dicom-conformance/dcm_qa_ct/In/Philips/S21570/S2010"
if [ -d "$dicom" ]; then
    # A DICOM series folder as a case (a CT head phantom, 28 slices of 512×512; no reference).
    mkdir "$cases/phantom_dicom"
    cp "$dicom"/* "$cases/phantom_dicom/"
    expected="$expected phantom_dicom"
else
    log "no $dicom: the DICOM-folder case is skipped"
fi
echo "# not a case: other files are skipped" > "$cases/notes.txt"

work="$tmp/work"
mkdir -p "$work"
cat > "$work/config.yaml" <<CONF
input_dir: $cases
output_dir: $work/results
references_dir: $refs
msd: $msd
threads: 1
implant:
  enabled: true
  cases: [head_defect]
  points: {head_defect: "-64,33,91"}
CONF
log "snakemake --cores $cores on: $expected"
(cd "$work" && snakemake -s "$repo/workflow/Snakefile" --configfile "$work/config.yaml" --cores "$cores" \
    > "$work/snakemake.log" 2>&1) || { tail -n 60 "$work/snakemake.log" >&2; die "snakemake failed (log above)"; }
log "workflow finished"

MSD_BIN=$msd python - "$work/results" "$expected" "$evaluated" <<'PY' || die "the workflow's outputs are wrong (see above)"
import csv, json, os, subprocess, sys
results, expected, evaluated = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
msd = os.environ["MSD_BIN"]
errors = []
with open(os.path.join(results, "report", "study.csv")) as f:
    rows = {r["case"]: r for r in csv.DictReader(f)}
if sorted(rows) != sorted(expected):
    errors.append(f"report rows {sorted(rows)} != cases {sorted(expected)}")
for c in expected:
    d = os.path.join(results, "cases", c)
    for f in ("labels.nii.gz", "skull.stl"):
        if not os.path.isfile(os.path.join(d, f)) or os.path.getsize(os.path.join(d, f)) == 0:
            errors.append(f"{c}: no {f}")
    info = json.loads(subprocess.run([msd, "info", os.path.join(d, "skull.stl"), "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    if not info.get("watertight"):
        errors.append(f"{c}: skull.stl is not watertight")
    r = rows.get(c, {})
    if c in evaluated:
        if not float(r.get("dice") or "nan") >= 0.85:
            errors.append(f"{c}: Dice {r.get('dice')} below 0.85")
    elif r.get("dice"):
        errors.append(f"{c}: has no reference but a Dice in the report")
    if not float(r.get("bone_ml") or 0) > 0:
        errors.append(f"{c}: no bone volume in the report")
if rows.get("head_defect", {}).get("implant_status") != "ok":
    errors.append(f"head_defect: implant {rows.get('head_defect', {}).get('implant_status')}")
html_path = os.path.join(results, "report", "study.html")
html = open(html_path).read() if os.path.exists(html_path) else ""
if 'id="msd-data"' not in html or "THREE" not in html:
    errors.append("report/study.html is missing or has no 3D view")
elif "axial slice: prediction (red)" not in html or html.count("data:image/png;base64,") != 5 * len(evaluated):
    errors.append("report/study.html lacks a render, a histogram and three slices over the CT for each evaluated case")
rep = json.load(open(os.path.join(results, "report", "study.json")))
if rep["n_cases"] != len(expected) or rep["n_evaluated"] != len(evaluated):
    errors.append(f"study.json counts {rep['n_cases']}/{rep['n_evaluated']} != {len(expected)}/{len(evaluated)}")
if rep["summary"]["dice"]["n"] != len(evaluated):
    errors.append("study.json: the Dice summary does not count every evaluated case")
if not rep.get("msd_version", "").startswith("msd "):
    errors.append(f"study.json: msd_version {rep.get('msd_version')!r}")
for e in errors:
    print("check failed:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print("outputs checked:", ", ".join(f"{c} Dice {rows[c]['dice'][:5] or '-'}" for c in expected))
PY

# A second run must find everything up to date.
(cd "$work" && snakemake -s "$repo/workflow/Snakefile" --configfile "$work/config.yaml" --cores "$cores" \
    --dry-run --quiet > "$work/rerun.log" 2>&1) || { cat "$work/rerun.log" >&2; die "dry re-run failed"; }
grep -q "Nothing to be done" "$work/rerun.log" || { cat "$work/rerun.log" >&2; die "a second run would redo jobs"; }
log "re-run: nothing to be done"
log "PASSED"
