"""Times scikit-image's marching_cubes on the volume `cargo bench --bench geom` dumps.

    MSD_GEOM_BENCH_DUMP=/tmp/shell.raw cargo bench -p msd-geom --bench geom -- marching_cubes
    python3 crates/msd-geom/benches/skimage_marching_cubes.py /tmp/shell.raw

Reports the best of five runs for the float32 volume (what `marching_cubes` gets) and for the u8
label as is (skimage converts it to float first).
"""
import sys
import time

import numpy as np
from skimage.measure import marching_cubes

path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/shell.raw"
label = np.fromfile(path, dtype=np.uint8).reshape(250, 512, 512)
vol = label.astype(np.float32)
for name, data in [("float32", vol), ("uint8", label)]:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        verts, faces, _, _ = marching_cubes(data, 0.5, spacing=(0.9, 0.45, 0.45))
        best = min(best, time.perf_counter() - t)
    print(f"skimage {name}: best {best:.3f} s, {label.size / best / 1e6:.1f} Mvoxel/s, "
          f"{len(faces)} faces, {len(verts)} vertices")
