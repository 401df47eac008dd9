"""Writes the NIfTI-1 fixtures of tests/nifti_fixtures.rs with nibabel and records the expected
voxels (as [z, y, x]) and LPS geometry in expected.json. Run: python make_fixtures.py"""
import json
import numpy as np
import nibabel as nib

xyz = (5, 4, 3)
a = (np.arange(np.prod(xyz)).reshape(xyz) * 3 - 20).astype(np.int16)
c, s = np.cos(0.5), np.sin(0.5)
rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.diag([0.8, 0.9, 2.5])
aff = np.eye(4)
aff[:3, :3] = rot
aff[:3, 3] = [12.0, -7.0, 30.5]
expected = {}

def record(name, img, ras):
    lps = np.diag([-1.0, -1.0, 1.0]) @ ras[:3]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    expected[name] = {
        "values_zyx": np.asarray(img.dataobj).astype(np.float64).transpose(2, 1, 0).ravel().tolist(),
        "scaled_zyx": img.get_fdata().transpose(2, 1, 0).ravel().tolist(),
        "spacing": spacing.tolist(), "origin_lps": lps[:, 3].tolist(),
        "direction_lps": (lps[:, :3] / spacing).tolist(),
    }

# qform only (sform_code 0), with a reflection (qfac -1): RAS affine with det < 0.
flip = aff.copy()
flip[:3, 2] *= -1
img = nib.Nifti1Image(a, None)
img.header.set_qform(flip, code=1)
img.header.set_sform(None, code=0)
nib.save(img, "nibabel_qform_only.nii")
record("nibabel_qform_only.nii", nib.load("nibabel_qform_only.nii"), nib.load("nibabel_qform_only.nii").header.get_qform())

# sform, gzip, uint8 with scl_slope / scl_inter.
u = (np.arange(np.prod(xyz)).reshape(xyz) % 11).astype(np.uint8)
img = nib.Nifti1Image(u, aff)
img.header.set_slope_inter(0.5, -3.0)
nib.save(img, "nibabel_sform_scaled.nii.gz")
loaded = nib.load("nibabel_sform_scaled.nii.gz")
record("nibabel_sform_scaled.nii.gz", loaded, loaded.affine)

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
