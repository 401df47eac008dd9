#!/usr/bin/env python3
"""msd against the C++ libraries a user would call from Python, side by side, in one run.

Usage (from the repository root, after `cargo build --release -p msd-cli`):

    python3 benches/compare_libraries.py [--msd target/release/msd] [--work target/compare-libraries]
                                         [--runs 3] [--threads 2]

The script
  1. makes a virtual environment (`<work>/venv`) and installs the references there with pip:
     SimpleITK, vtk, open3d, numpy;
  2. makes the test inputs from `../shared/data/cthead/` (kept in `<work>` for later runs):
     a 512x512x250 int16 CT `.nii.gz`, a 512^3 uint8 skull label `.nii.gz` (the reference skull,
     upsampled), two 512x512x250 labels (skull with and without the craniectomy) and two STL surfaces
     of about 2.5 M triangles each (the 512^3 skull with and without the craniectomy);
  3. times every job as a whole process, msd and the library alike (`python -c` per library job),
     warm cache, minimum of `--runs` runs, with the peak resident memory from `/usr/bin/time -v`;
  4. prints the table with the ratios (library time / msd time: above 1 means msd is faster), the
     date and the CPU.

Jobs:
  read int16 CT      `msd info`                     SimpleITK ReadImage
  read uint8 label   `msd info`                     SimpleITK ReadImage
  label -> STL       `msd mesh`                     SimpleITK + vtkDiscreteFlyingEdges3D + vtkSTLWriter
  Dice               `msd eval --no-surface`        SimpleITK LabelOverlapMeasuresImageFilter
  MAD of two STLs    `msd eval` (2 samples / mm^2)  open3d RaycastingScene, the same sample counts
"""
import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "cthead"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def venv_python(work: Path) -> Path:
    venv = work / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        sh([sys.executable, "-m", "venv", str(venv)])
    probe = subprocess.run([str(py), "-c", "import SimpleITK, vtk, open3d, numpy"], capture_output=True)
    if probe.returncode != 0:
        sh([str(py), "-m", "pip", "install", "-q", "SimpleITK", "vtk", "open3d", "numpy"])
    return py


MAKE_INPUTS = r"""
import sys, SimpleITK as sitk
src, work = sys.argv[1], sys.argv[2]

def resample(img, size, interp, pixel):
    sp_in, sz_in = img.GetSpacing(), img.GetSize()
    extent = [sp_in[i] * sz_in[i] for i in range(3)]
    spacing = [extent[i] / size[i] for i in range(3)]
    # Keep the physical extent: the first output voxel centre half an output voxel inside the box.
    origin_box = [img.GetOrigin()[i] - 0.5 * sp_in[i] for i in range(3)]
    d = img.GetDirection()
    origin = [origin_box[r] + sum(d[3 * r + c] * 0.5 * spacing[c] for c in range(3)) for r in range(3)]
    f = sitk.ResampleImageFilter()
    f.SetSize(size); f.SetOutputSpacing(spacing); f.SetOutputOrigin(origin)
    f.SetOutputDirection(d); f.SetInterpolator(interp); f.SetOutputPixelType(pixel)
    return f.Execute(img)

def label(name, size):
    m = sitk.Cast(sitk.ReadImage(f"{src}/{name}"), sitk.sitkFloat32)
    up = resample(m, size, sitk.sitkLinear, sitk.sitkFloat32)
    return sitk.Cast(up >= 0.5, sitk.sitkUInt8)

ct = resample(sitk.ReadImage(f"{src}/ct.nii.gz"), [512, 512, 250], sitk.sitkLinear, sitk.sitkInt16)
sitk.WriteImage(ct, f"{work}/ct_512x512x250_int16.nii.gz", True)
sitk.WriteImage(label("skull_ref.nii.gz", [512, 512, 512]), f"{work}/skull_512cube_uint8.nii.gz", True)
sitk.WriteImage(label("skull_defect_ref.nii.gz", [512, 512, 512]), f"{work}/skull_defect_512cube_uint8.nii.gz", True)
sitk.WriteImage(label("skull_ref.nii.gz", [512, 512, 250]), f"{work}/skull_512x512x250.nii.gz", True)
sitk.WriteImage(label("skull_defect_ref.nii.gz", [512, 512, 250]), f"{work}/skull_defect_512x512x250.nii.gz", True)
"""

READ = "import sys, SimpleITK as sitk; im = sitk.ReadImage(sys.argv[1]); print(im.GetSize())"

MESH = r"""
import sys, SimpleITK as sitk, vtk
from vtkmodules.util import numpy_support
vtk.vtkSMPTools.SetBackend("STDThread"); vtk.vtkSMPTools.Initialize(int(sys.argv[3]))
im = sitk.ReadImage(sys.argv[1])
a = sitk.GetArrayViewFromImage(im)
img = vtk.vtkImageData()
img.SetDimensions(*im.GetSize()); img.SetSpacing(*im.GetSpacing()); img.SetOrigin(*im.GetOrigin())
img.GetPointData().SetScalars(numpy_support.numpy_to_vtk(a.ravel(), deep=False))
fe = vtk.vtkDiscreteFlyingEdges3D(); fe.SetInputData(img); fe.SetValue(0, 1); fe.ComputeNormalsOff()
fe.ComputeGradientsOff(); fe.ComputeScalarsOff()
w = vtk.vtkSTLWriter(); w.SetFileTypeToBinary(); w.SetInputConnection(fe.GetOutputPort()); w.SetFileName(sys.argv[2])
w.Write()
print(fe.GetOutput().GetNumberOfCells())
"""

DICE = r"""
import sys, SimpleITK as sitk
f = sitk.LabelOverlapMeasuresImageFilter()
f.Execute(sitk.ReadImage(sys.argv[1]), sitk.ReadImage(sys.argv[2]))
print(f"{f.GetDiceCoefficient():.9f}")
"""

MAD = r"""
import sys, numpy as np, open3d as o3d
a = o3d.io.read_triangle_mesh(sys.argv[1]); b = o3d.io.read_triangle_mesh(sys.argv[2])
na, nb = int(sys.argv[3]), int(sys.argv[4])
def scene(m):
    s = o3d.t.geometry.RaycastingScene(); s.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(m)); return s
pa = np.asarray(a.sample_points_uniformly(na).points, dtype=np.float32)
pb = np.asarray(b.sample_points_uniformly(nb).points, dtype=np.float32)
dab = scene(b).compute_distance(o3d.core.Tensor(pa)).numpy()
dba = scene(a).compute_distance(o3d.core.Tensor(pb)).numpy()
print(f"{(dab.sum() + dba.sum()) / (na + nb):.6f}")
"""


def timed(cmd, runs, env=None):
    """Minimum wall time (s) over `runs` runs after one warm-up, peak RSS (MB) and the last stdout."""
    best, peak, out = math.inf, 0.0, ""
    for i in range(runs + 1):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            t0 = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name] + cmd, capture_output=True, text=True, env=env)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{p.stdout}\n{p.stderr}")
            rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tf.read())
        out = p.stdout
        if i == 0:
            continue  # warm-up: the files are in the page cache from here on
        if dt < best:
            best = dt
        peak = max(peak, int(rss.group(1)) / 1024 if rss else 0.0)
    return best, peak, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--msd", default=str(ROOT / "target" / "release" / "msd"))
    ap.add_argument("--work", default=str(ROOT / "target" / "compare-libraries"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for VTK's SMP backend")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    msd = args.msd
    py = str(venv_python(work))
    f = {k: str(work / v) for k, v in {
        "ct": "ct_512x512x250_int16.nii.gz",
        "label": "skull_512cube_uint8.nii.gz",
        "label_defect": "skull_defect_512cube_uint8.nii.gz",
        "a": "skull_512x512x250.nii.gz",
        "b": "skull_defect_512x512x250.nii.gz",
        "stl_a": "skull_512cube.stl",
        "stl_b": "skull_defect_512cube.stl",
    }.items()}
    if not all(Path(f[k]).exists() for k in ["ct", "label", "label_defect", "a", "b"]):
        print("making the inputs ...", flush=True)
        sh([py, "-c", MAKE_INPUTS, str(SHARED), str(work)])
    for lab, stl in [("label", "stl_a"), ("label_defect", "stl_b")]:
        if not Path(f[stl]).exists():
            sh([msd, "mesh", f[lab], "--out", f[stl]], stdout=subprocess.DEVNULL)

    def info(path):
        return json.loads(subprocess.run([msd, "info", "--json", path], check=True, capture_output=True, text=True).stdout)

    # The same sample counts as msd eval (2 per mm², at most 2 million per surface).
    n_a = min(math.ceil(info(f["stl_a"])["area_mm2"] * 2.0), 2_000_000)
    n_b = min(math.ceil(info(f["stl_b"])["area_mm2"] * 2.0), 2_000_000)
    out_msd = str(work / "out_msd.stl")
    out_vtk = str(work / "out_vtk.stl")
    jobs = [
        ("read 512x512x250 int16 .nii.gz", [msd, "info", f["ct"]], [py, "-c", READ, f["ct"]]),
        ("read 512^3 uint8 label .nii.gz", [msd, "info", f["label"]], [py, "-c", READ, f["label"]]),
        ("512^3 label -> STL", [msd, "mesh", f["label"], "--out", out_msd],
         [py, "-c", MESH, f["label"], out_vtk, str(args.threads)]),
        ("Dice, two 512x512x250 labels", [msd, "eval", "--no-surface", "--pred", f["a"], "--ref", f["b"]],
         [py, "-c", DICE, f["a"], f["b"]]),
        (f"MAD, two STLs, {n_a}/{n_b} samples", [msd, "eval", "--pred", f["stl_a"], "--ref", f["stl_b"]],
         [py, "-c", MAD, f["stl_a"], f["stl_b"], str(n_a), str(n_b)]),
    ]
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    load = os.getloadavg()
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, CPU {cpu}, "
          f"{os.cpu_count()} logical CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start, "
          f"min of {args.runs} warm runs, whole process each")
    header = f"| job | msd s | msd peak MB | library s | library peak MB | library ÷ msd |"
    print(header)
    print("|---|---|---|---|---|---|")
    results = []
    for name, mcmd, lcmd in jobs:
        mt, mm, mout = timed(mcmd, args.runs)
        lt, lm, lout = timed(lcmd, args.runs)
        results.append({"job": name, "msd_s": mt, "msd_peak_mb": mm, "library_s": lt, "library_peak_mb": lm,
                        "ratio": lt / mt, "msd_out": mout.strip()[-400:], "library_out": lout.strip()[-400:]})
        print(f"| {name} | {mt:.2f} | {mm:.0f} | {lt:.2f} | {lm:.0f} | {lt / mt:.2f} |", flush=True)
    for r in results:
        print(f"\n{r['job']}\n  msd: {r['msd_out'].splitlines()[-1] if r['msd_out'] else ''}"
              f"\n  library: {r['library_out'].splitlines()[-1] if r['library_out'] else ''}")
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "results": results}, indent=2))


if __name__ == "__main__":
    main()
