"""Writes the NRRD fixtures of tests/nrrd_fixtures.rs with two independent writers (SimpleITK's
ITK NrrdIO and pynrrd) and records the expected voxels and LPS geometry in expected.json.

Run with a Python that has numpy, SimpleITK and pynrrd: python make_fixtures.py
"""
import json
import numpy as np
import SimpleITK as sitk
import nrrd

expected = {}
zyx = (3, 4, 5)

# 1. SimpleITK: int16, oblique direction, gzip, attached header, LPS.
a = (np.arange(np.prod(zyx)).reshape(zyx) * 37 % 2000 - 1000).astype(np.int16)
img = sitk.GetImageFromArray(a)
img.SetSpacing((0.7, 0.8, 1.5))
img.SetOrigin((10.0, -20.0, 30.0))
c, s = np.cos(0.4), np.sin(0.4)
img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
sitk.WriteImage(img, "sitk_int16_gzip.nrrd", useCompression=True)
expected["sitk_int16_gzip.nrrd"] = {
    "values_zyx": a.ravel().tolist(), "shape_zyx": list(zyx),
    "spacing": list(img.GetSpacing()), "origin_lps": list(img.GetOrigin()),
    "direction_lps": np.array(img.GetDirection()).reshape(3, 3).tolist(),
}

# 2. pynrrd: float32 big endian, raw, detached .nhdr + .raw, RAS space.
b = (np.arange(np.prod(zyx)).reshape(zyx) * 0.25 - 3.0).astype(">f4")
dirs_ras = np.array([[0.0, 0.9, 0.0], [0.0, 0.0, 1.1], [2.0, 0.0, 0.0]])  # rows: axis x, y, z in RAS
origin_ras = np.array([5.0, 6.0, -7.0])
header = {"type": "float", "space": "right-anterior-superior", "space directions": dirs_ras,
          "space origin": origin_ras, "endian": "big", "encoding": "raw", "kinds": ["domain"] * 3}
nrrd.write("pynrrd_float_be.nhdr", b, header, detached_header=True, index_order="C")
flip = np.array([-1.0, -1.0, 1.0])
cols_lps = [d * flip for d in dirs_ras]
expected["pynrrd_float_be.nhdr"] = {
    "values_zyx": b.ravel().tolist(), "shape_zyx": list(zyx),
    "spacing": [float(np.linalg.norm(d)) for d in cols_lps], "origin_lps": (origin_ras * flip).tolist(),
    "direction_lps": np.array([d / np.linalg.norm(d) for d in cols_lps]).T.tolist(),
}

# 3. pynrrd: uint8, ascii encoding, spacings only (no space): identity direction, zero origin.
u = (np.arange(np.prod(zyx)).reshape(zyx) % 7).astype(np.uint8)
nrrd.write("pynrrd_uint8_ascii.nrrd", u, {"type": "uint8", "encoding": "ascii", "spacings": [0.5, 0.25, 3.0]},
           index_order="C")
expected["pynrrd_uint8_ascii.nrrd"] = {
    "values_zyx": u.ravel().tolist(), "shape_zyx": list(zyx),
    "spacing": [0.5, 0.25, 3.0], "origin_lps": [0.0, 0.0, 0.0],
    "direction_lps": np.eye(3).tolist(),
}

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
