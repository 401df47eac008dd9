#!/usr/bin/env bash
# Test the msd study workflow on a real Slurm cluster: a one-node cluster started on this machine.
#
#   workflow/test/slurm_local.sh [--msd PATH] [--keep]
#
# 1. Installs what it needs where it is missing: slurmctld, slurmd, slurm-client (= slurm-wlm) and
#    munge (Debian packages), and snakemake + snakemake-executor-plugin-slurm + nibabel/numpy in a
#    venv (~/.cache/msd/).
# 2. Starts munged, slurmctld and slurmd with a slurm.conf generated for this host (its real CPUs and
#    memory from `slurmd -C`, free ports, no cgroups, state under a temporary folder); checks that
#    sinfo shows the node idle and `srun hostname` runs.
# 3. Makes 3 small real-anatomy NIfTI cases from ../shared/data/cthead (make_cases.py), runs the
#    workflow through the Slurm executor plugin with the repo's profile (segmentation, meshes,
#    evaluation against the references, one implant), and checks the outputs: labels, watertight
#    STLs, one report row per case with a Dice that is not nonsense, the implant, and that every job
#    went through Slurm and completed there.
# 4. Runs workflow/sbatch/segment_array.sh as a Slurm array on the same cases and checks it.
# The cluster is shut down and the temporary folder removed on exit (--keep keeps the folder).
#
# Needs root (apt-get, and the daemons run as root here) or, without root, slurm-wlm and munge
# already installed (the daemons then run as the current user). Environment: MSD (the msd binary;
# default target/release/msd, else target/debug/msd), MSD_SHARED (default ../shared),
# MSD_WORKFLOW_VENV (a venv with workflow/requirements.txt; default ~/.cache/msd/workflow-venv-HASH).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
t0=$SECONDS
log() { echo "[slurm_local $((SECONDS - t0)) s] $*"; }
die() { echo "slurm_local.sh: FAILED: $*" >&2; exit 1; }

keep=0
msd=${MSD:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --msd) msd=$2; shift 2 ;;
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

# ------------------------------------------------------------------ install
log "msd: $msd ($("$msd" -V))"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "Slurm and munge are not installed and this is not root: run 'apt-get install -y slurm-wlm munge' as root"
    # slurm-wlm is slurmctld + slurmd + slurm-client; without their recommends (X11 sview, docs,
    # mysql, …) the install is 8 packages instead of 43: ~30 s instead of minutes.
    log "installing slurmctld, slurmd, slurm-client and munge (apt-get, the parts of slurm-wlm)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi
workflow_venv
log "snakemake $(snakemake --version), $(slurmctld -V)"

# ------------------------------------------------------------------ cluster
tmp=$(mktemp -d "${TMPDIR:-/tmp}/msd-slurm.XXXXXX")
chmod 755 "$tmp"
cleanup() {
    local rc=$?
    set +e
    if [ $rc -ne 0 ]; then
        for f in "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log "$tmp"/munge/munged.log; do
            [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 20 "$f"; }
        done >&2
    fi
    [ -n "${snakemake_pid:-}" ] && kill "$snakemake_pid" 2>/dev/null && wait "$snakemake_pid" 2>/dev/null
    [ -n "${SLURM_CONF:-}" ] && scancel --full --quiet --user="$(id -un)" 2>/dev/null
    for pidfile in "$tmp/run/slurmd.pid" "$tmp/run/slurmctld.pid" "$tmp/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
        fi
    done
    if [ "$keep" -eq 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    echo "[slurm_local $((SECONDS - t0)) s] cluster stopped, exit status $rc"
}
trap cleanup EXIT
# A TERM or INT (e.g. from `timeout`) exits through the EXIT trap too, so the daemons are stopped.
trap 'exit 143' TERM
trap 'exit 130' INT

user=$(id -un)
host=$(hostname -s)
mkdir -p "$tmp"/{munge,state,spool/slurmd-"$host",log,run,work}
chmod 755 "$tmp/munge"

log "starting munged"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munged --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.socket" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/munged.seed" \
    || die "munged did not start (see $tmp/munge/munged.log)"
for _ in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.1; done
munge --socket="$tmp/munge/munge.socket" -n | unmunge --socket="$tmp/munge/munge.socket" >/dev/null \
    || die "munge credentials do not round-trip"

# Two free TCP ports for slurmctld and slurmd (another cluster may run on this machine).
read -r ctld_port slurmd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

# The node line as slurmd sees this machine (CPUs, sockets, cores, threads, RealMemory).
node_hw=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
[ -n "$node_hw" ] || die "slurmd -C printed no node description"
export SLURM_CONF="$tmp/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=msdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/slurmd-%n
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
PlugStackConfig=$tmp/plugstack.conf
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes: the executor plugin reads their state there.
MinJobAge=600
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 $node_hw State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
: > "$tmp/plugstack.conf"

# snakemake-executor-plugin-slurm-jobstep (0.6.1) runs each job's `srun` with every SLURM_* variable
# removed but a few, SLURM_CONF among them, so inside a job srun would look for the compiled-in
# /etc/slurm/slurm.conf. A real cluster keeps its config there; this one keeps it under $tmp, so an
# `srun` first on PATH (PATH is exported to the jobs) puts SLURM_CONF back and runs the real srun.
real_srun=$(command -v srun)
mkdir -p "$tmp/bin"
cat > "$tmp/bin/srun" <<SHIM
#!/bin/sh
SLURM_CONF='$SLURM_CONF' exec '$real_srun' "\$@"
SHIM
chmod +x "$tmp/bin/srun"
export PATH="$tmp/bin:$PATH"

log "starting slurmctld and slurmd (ports $ctld_port, $slurmd_port)"
slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$host" || die "slurmd did not start"
state=""
for _ in $(seq 60); do
    state=$(sinfo --noheader --nodes="$host" --format=%t 2>/dev/null || true)
    case "$state" in idle*|mix*) break ;; esac
    sleep 0.5
done
case "$state" in idle*|mix*) ;; *) die "node $host is '$state', not idle, after 30 s (sinfo -R: $(sinfo -R --noheader))" ;; esac
sinfo
got=$(timeout 60 srun --nodes=1 --ntasks=1 hostname) || die "srun hostname failed"
[ "$got" = "$(hostname)" ] || die "srun hostname printed '$got', expected '$(hostname)'"
log "cluster up: sinfo shows $host $state, srun hostname ran on $got"

# ------------------------------------------------------------------ cases
cases="$tmp/cases"
refs="$tmp/refs"
python "$here/make_cases.py" --cthead "$shared/data/cthead" --cases "$cases" --refs "$refs"
ncases=$(find "$cases" -name '*.nii.gz' | wc -l)
[ "$ncases" -eq 3 ] || die "make_cases.py made $ncases cases, expected 3"

# ------------------------------------------------------------------ the workflow through Slurm
work="$tmp/work"
results="$work/results"
cat > "$work/config.yaml" <<CONF
input_dir: $cases
output_dir: $results
references_dir: $refs
msd: $msd
threads: 1
implant:
  enabled: true
  cases: [head_defect]
  # The coarse test skull has a second opening; this picks the craniectomy (see make_cases.py).
  points: {head_defect: "-64,33,91"}
CONF
log "snakemake --executor slurm (profile workflow/profiles/slurm) on $ncases cases"
# In the background and waited for, so that a TERM reaches the EXIT trap at once (which stops it).
(
    cd "$work"
    # The profile asks for more CPUs and memory than a CI machine has: scale them to this node.
    exec snakemake -s "$repo/workflow/Snakefile" --workflow-profile "$repo/workflow/profiles/slurm" \
        --configfile "$work/config.yaml" --jobs 6 \
        --set-threads segment=1 evaluate=1 \
        --set-resources segment:mem_mb=2000 mesh:mem_mb=1000 evaluate:mem_mb=1000 implant:mem_mb=1000 \
        --default-resources mem_mb=1000 runtime=10 \
        --slurm-init-seconds-before-status-checks 2 --seconds-between-status-checks 2 \
        --slurm-status-command squeue \
        --slurm-keep-successful-logs --slurm-logdir "$work/slurm-logs" --latency-wait 10 --retries 0 \
        > "$work/snakemake.log" 2>&1
) &
snakemake_pid=$!
wait "$snakemake_pid" || { tail -n 60 "$work/snakemake.log" >&2; die "snakemake through Slurm failed (log above)"; }
snakemake_pid=""
log "workflow finished"

# Every job ran as a Slurm job and completed (finished jobs stay in squeue for MinJobAge).
squeue --states=all --noheader --format='%i %j %T' > "$work/jobs.txt"
expected_jobs=$((3 * 3 + 2))   # segment, mesh, evaluate per case, one implant, the HTML report
njobs=$(grep -vc ' hostname ' "$work/jobs.txt" || true)
[ "$njobs" -ge "$expected_jobs" ] || { cat "$work/jobs.txt" >&2; die "Slurm ran $njobs jobs, expected at least $expected_jobs"; }
if grep -v ' COMPLETED$' "$work/jobs.txt" | grep -q .; then
    cat "$work/jobs.txt" >&2; die "some Slurm jobs did not complete"
fi
for rule in segment mesh evaluate implant; do
    n=$(find "$work/slurm-logs" -path "*rule_$rule*" -name '*.log' | wc -l)
    [ "$n" -ge 1 ] || die "no Slurm log for rule $rule under $work/slurm-logs: it did not run through Slurm"
done
log "$njobs Slurm jobs, all COMPLETED"

MSD_BIN=$msd python - "$results" "$cases" <<'PY' || die "the workflow's outputs are wrong (see above)"
import csv, json, os, subprocess, sys
results, cases_dir = sys.argv[1], sys.argv[2]
msd = os.environ["MSD_BIN"]
cases = sorted(f[: -len(".nii.gz")] for f in os.listdir(cases_dir) if f.endswith(".nii.gz"))
errors = []
for c in cases:
    d = os.path.join(results, "cases", c)
    for f in ("labels.nii.gz", "skull.stl", "eval.json"):
        p = os.path.join(d, f)
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            errors.append(f"{c}: no {f}")
    info = json.loads(subprocess.run([msd, "info", os.path.join(d, "skull.stl"), "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    if not info.get("watertight") or info.get("triangles", 0) < 1000:
        errors.append(f"{c}: skull.stl is not a watertight skull surface: {info}")
with open(os.path.join(results, "report", "study.csv")) as f:
    rows = {r["case"]: r for r in csv.DictReader(f)}
if sorted(rows) != cases:
    errors.append(f"report rows {sorted(rows)} != cases {cases}")
for c, r in rows.items():
    dice = float(r["dice"] or "nan")
    # Real anatomy at 2 mm pixels: the shipped model gives ~0.93; 0.85 leaves room for rounding, not for a broken run.
    if not dice >= 0.85:
        errors.append(f"{c}: Dice {r['dice']} against the reference is below 0.85")
    if r["mesh_watertight"] != "True":
        errors.append(f"{c}: report says the mesh is not watertight")
rep = json.load(open(os.path.join(results, "report", "study.json")))
if rep["n_cases"] != len(cases) or rep["n_evaluated"] != len(cases):
    errors.append(f"study.json: n_cases {rep['n_cases']}, n_evaluated {rep['n_evaluated']}, expected {len(cases)}")
if rows["head_defect"]["implant_status"] != "ok":
    errors.append(f"head_defect: implant {rows['head_defect']['implant_status']}: {rows['head_defect']['implant_message']}")
vol = float(rows["head_defect"]["implant_volume_ml"] or 0)
# The removed bone (implant_ref) is ~33 ml at full resolution.
if not 10 <= vol <= 80:
    errors.append(f"head_defect: implant volume {vol} ml is not plausible for a ~70 mm craniectomy")
if any(rows[c]["implant_status"] for c in rows if c != "head_defect"):
    errors.append("an implant was designed for a case not listed in implant.cases")
html_path = os.path.join(results, "report", "study.html")
html = open(html_path).read() if os.path.exists(html_path) else ""
if 'id="msd-data"' not in html or "THREE" not in html:
    errors.append("report/study.html is missing or has no 3D view")
elif "axial slice: prediction (red)" not in html or html.count("data:image/png;base64,") != 5 * len(cases):
    errors.append("report/study.html lacks a render, a histogram and three slices over the CT for each evaluated case")
md = open(os.path.join(results, "report", "study.md")).read()
for c in cases:
    if f"| {c} |" not in md:
        errors.append(f"study.md has no row for {c}")
for e in errors:
    print("check failed:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"outputs checked: {len(cases)} cases, Dice " + ", ".join(f"{rows[c]['dice'][:5]}" for c in cases)
      + f", implant {vol:.1f} ml")
PY
log "workflow outputs checked"

# ------------------------------------------------------------------ the plain sbatch array
find "$cases" -name '*.nii.gz' | sort > "$tmp/list.txt"
array_out="$tmp/array"
log "sbatch --array=1-$ncases workflow/sbatch/segment_array.sh"
jobid=$(cd "$tmp" && MSD="$msd" sbatch --parsable --wait --array=1-"$ncases" --cpus-per-task=1 --mem=2000 \
    --output="$tmp/array-%A_%a.log" "$repo/workflow/sbatch/segment_array.sh" "$tmp/list.txt" "$array_out") \
    || { cat "$tmp"/array-*.log >&2 2>/dev/null || true; die "the sbatch array failed"; }
jobid=${jobid%%;*}
while read -r scan; do
    name=$(basename "$scan" .nii.gz)
    for f in labels.nii.gz skull.stl skull.json segment.log; do
        [ -s "$array_out/$name/$f" ] || die "array: no $array_out/$name/$f"
    done
    grep -q '"watertight": true' "$array_out/$name/skull.json" || die "array: $name/skull.stl is not watertight"
    # The array and the workflow ran the same msd segment on the same scan: the labels must agree.
    python - "$array_out/$name/labels.nii.gz" "$results/cases/$name/labels.nii.gz" <<'PY' \
        || die "array: $name labels differ from the workflow's"
import sys, numpy as np, nibabel as nib
a, b = (np.asarray(nib.load(p).dataobj) for p in sys.argv[1:3])
if a.shape != b.shape or not np.array_equal(a, b):
    sys.exit(f"{sys.argv[1]} and {sys.argv[2]} differ")
PY
done < "$tmp/list.txt"
ntasks=$(squeue --states=all --noheader --jobs="$jobid" --format='%T' | grep -c COMPLETED || true)
[ "$ntasks" -eq "$ncases" ] || die "array job $jobid: $ntasks of $ncases tasks COMPLETED"
log "sbatch array: $ncases tasks completed, labels identical to the workflow's"

log "PASSED"
