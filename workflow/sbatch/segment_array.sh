#!/usr/bin/env bash
#SBATCH --job-name=msd-segment
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=msd-segment-%A_%a.log
#
# Segment a study on Slurm without Snakemake: one array task per case, from a list file.
#
#   find /data/study -mindepth 1 -maxdepth 1 > cases.txt      # DICOM folders and/or .nii/.nii.gz/.nrrd files
#   sbatch --array=1-$(wc -l < cases.txt)%20 workflow/sbatch/segment_array.sh cases.txt results/
#
# Task N takes line N of the list (one path per line) and writes, for case NAME (the folder or file
# name without .nii.gz/.nii/.nrrd):
#   OUT_DIR/NAME/labels.nii.gz   the skull label (msd segment with the shipped model)
#   OUT_DIR/NAME/skull.stl       its watertight surface
#   OUT_DIR/NAME/skull.json      msd info --json of the surface
#   OUT_DIR/NAME/segment.log     what msd printed
# The files appear together (written to a temporary folder, then renamed), so a case folder that
# exists is complete. Override the #SBATCH lines on the sbatch command line (e.g. --mem=16G).
#
# Environment: MSD (the msd binary; default `msd` on PATH), MSD_SEGMENT_ARGS (more `msd segment`
# flags, e.g. "--resample" or "--model my.safetensors"). Threads: SLURM_CPUS_PER_TASK.
set -euo pipefail

die() { echo "segment_array.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: sbatch --array=1-N segment_array.sh LIST_FILE OUT_DIR"
list=$1
out_dir=$2
[ -f "$list" ] || die "list file '$list' does not exist"
[ -n "${SLURM_ARRAY_TASK_ID:-}" ] || die "SLURM_ARRAY_TASK_ID is not set: submit with sbatch --array=1-N (N = lines in $list)"
msd=${MSD:-msd}
command -v "$msd" >/dev/null 2>&1 || die "msd binary '$msd' not found (set MSD=/path/to/msd)"

task=$SLURM_ARRAY_TASK_ID
n=$(grep -c '' "$list" || true)
if [ "$task" -lt 1 ] || [ "$task" -gt "$n" ]; then
    die "array task $task is outside the list's lines 1..$n"
fi
scan=$(sed -n "${task}p" "$list")
[ -n "$scan" ] || die "line $task of $list is empty"
[ -e "$scan" ] || die "line $task of $list: '$scan' does not exist"

name=$(basename "$scan")
case "$name" in
    *.nii.gz) name=${name%.nii.gz} ;;
    *.nii) name=${name%.nii} ;;
    *.nrrd) name=${name%.nrrd} ;;
esac

mkdir -p "$out_dir"
final="$out_dir/$name"
tmp="$out_dir/.$name.tmp.${SLURM_JOB_ID:-$$}"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

echo "task $task: $scan -> $final ($(hostname), ${SLURM_CPUS_PER_TASK:-1} threads)"
# shellcheck disable=SC2086  # MSD_SEGMENT_ARGS is a list of flags
if ! RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} "$msd" segment "$scan" --out "$tmp/labels.nii.gz" \
    --mesh "$tmp/skull.stl" ${MSD_SEGMENT_ARGS:-} > "$tmp/segment.log" 2>&1; then
    cat "$tmp/segment.log" >&2
    die "msd segment failed on '$scan' (task $task)"
fi
"$msd" info "$tmp/skull.stl" --json > "$tmp/skull.json"
cat "$tmp/segment.log"
rm -rf "$final"
mv "$tmp" "$final"
trap - EXIT
echo "task $task: done, $final"
