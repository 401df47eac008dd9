#!/usr/bin/env python3
"""Make small NIfTI test cases for the workflow from the real CThead scan in ../shared.

Each case is a block-averaged (in-plane) and z-cropped copy of a CT from
`shared/data/cthead/`, with its reference skull label reduced the same way (a voxel is bone when
at least half of its block is), so the cases are real anatomy at a coarser grid and small enough
for a CI run. The geometry (affine) is carried along exactly: a new voxel's centre is the centre of
the block it averages.

    make_cases.py --cthead ../shared/data/cthead --cases DIR --refs DIR [--factor 2]

writes DIR/<case>.nii.gz and REFS/<case>.nii.gz for the cases listed in CASES below.
"""
import argparse
import sys
from pathlib import Path

try:
    import nibabel as nib
    import numpy as np
except ImportError as e:  # pragma: no cover - environment problem, not a test result
    sys.exit(f"make_cases.py: needs nibabel and numpy ({e}); pip install nibabel numpy")

# name: (CT file, reference label file, z slices kept [start, stop), in-plane offset of the blocks)
CASES = {
    "head_full": ("ct.nii.gz", "skull_ref.nii.gz", (0, 113), 0),
    "head_defect": ("ct_defect.nii.gz", "skull_defect_ref.nii.gz", (40, 113), 0),
    "head_upper": ("ct.nii.gz", "skull_ref.nii.gz", (50, 113), 1),
}


def reduce(data, factor, offset, z0, z1, label):
    """Block-average x and y by `factor` (starting at `offset`) and keep slices z0..z1."""
    d = data[offset:, offset:, z0:z1].astype(np.float32)
    nx, ny = d.shape[0] // factor, d.shape[1] // factor
    d = d[: nx * factor, : ny * factor]
    d = d.reshape(nx, factor, ny, factor, d.shape[2]).mean(axis=(1, 3))
    if label:
        return (d >= 0.5).astype(np.uint8)
    return np.round(d).astype(np.int16)


def reduced_affine(affine, factor, offset, z0):
    # new index (i, j, k) is old index (offset + factor*i + (factor-1)/2, ..., z0 + k)
    m = np.eye(4)
    m[0, 0] = m[1, 1] = factor
    m[0, 3] = m[1, 3] = offset + (factor - 1) / 2.0
    m[2, 3] = z0
    return affine @ m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cthead", required=True, type=Path, help="shared/data/cthead folder")
    ap.add_argument("--cases", required=True, type=Path, help="folder for the case scans")
    ap.add_argument("--refs", required=True, type=Path, help="folder for the reference labels")
    ap.add_argument("--factor", type=int, default=2, help="in-plane block size (default 2)")
    ap.add_argument("--only", nargs="*", help="make only these cases")
    args = ap.parse_args()

    if not args.cthead.is_dir():
        sys.exit(f"make_cases.py: {args.cthead} is not a folder (the shared CThead data)")
    args.cases.mkdir(parents=True, exist_ok=True)
    args.refs.mkdir(parents=True, exist_ok=True)
    for name, (ct_file, ref_file, (z0, z1), offset) in CASES.items():
        if args.only and name not in args.only:
            continue
        for src, dst, label in (
            (ct_file, args.cases / f"{name}.nii.gz", False),
            (ref_file, args.refs / f"{name}.nii.gz", True),
        ):
            img = nib.load(str(args.cthead / src))
            data = np.asarray(img.dataobj)
            out = reduce(data, args.factor, offset, z0, z1, label)
            aff = reduced_affine(img.affine, args.factor, offset, z0)
            new = nib.Nifti1Image(out, aff)
            new.set_qform(aff, code=1)
            new.set_sform(aff, code=1)
            nib.save(new, str(dst))
        print(f"{name}: {out.shape[0]}x{out.shape[1]}x{out.shape[2]} voxels, "
              f"ref {int(out.sum())} bone voxels")


if __name__ == "__main__":
    main()
