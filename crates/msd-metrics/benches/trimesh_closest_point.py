"""Closest-point throughput of trimesh on the surfaces of benches/metrics.rs, for comparison.

Builds the same 998 000-triangle latitude-longitude spheres, then times
`trimesh.proximity.closest_point` (rtree-accelerated) for N query points (every second vertex of
sphere A, as the Rust bench's `closest_point_queries_vs_1M_triangles`, truncated to N) against
sphere B and prints points/s. Usage: python3 trimesh_closest_point.py [N]  (pip install trimesh
rtree numpy).
"""
import sys
import time

import numpy as np
import trimesh


def uv_sphere(rings, segments, radius):
    verts = [(0.0, 0.0, radius(0.0, 0.0))]
    theta = np.pi * np.arange(1, rings) / rings
    phi = 2 * np.pi * np.arange(segments) / segments
    t, p = np.meshgrid(theta, phi, indexing="ij")
    r = radius(t, p)
    ring = np.stack([r * np.sin(t) * np.cos(p), r * np.sin(t) * np.sin(p), r * np.cos(t)], -1).reshape(-1, 3)
    v = np.vstack([verts, ring, [(0.0, 0.0, -radius(np.pi, 0.0))]])
    south = len(v) - 1

    def at(i, j):
        return 1 + (i - 1) * segments + j % segments

    j = np.arange(segments)
    faces = [np.stack([np.zeros_like(j), at(1, j), at(1, j + 1)], -1),
             np.stack([np.full_like(j, south), at(rings - 1, j + 1), at(rings - 1, j)], -1)]
    i, jj = np.meshgrid(np.arange(1, rings - 1), j, indexing="ij")
    i, jj = i.ravel(), jj.ravel()
    faces.append(np.stack([at(i, jj), at(i + 1, jj), at(i + 1, jj + 1)], -1))
    faces.append(np.stack([at(i, jj), at(i + 1, jj + 1), at(i, jj + 1)], -1))
    return trimesh.Trimesh(v.astype(np.float64), np.vstack(faces), process=False)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
a = uv_sphere(500, 1000, lambda t, p: 50.0 + 0 * np.asarray(t, dtype=float))
b = uv_sphere(500, 1000, lambda t, p: 50.5 + 0.3 * np.sin(5 * np.asarray(t)) * np.cos(3 * np.asarray(p)))
queries = a.vertices[::2][:n]
print(f"{len(b.faces)} triangles, {len(queries)} query points")
t0 = time.perf_counter()
b.triangles_tree  # build the rtree once, outside the timing (as the Rust query bench does)
t1 = time.perf_counter()
closest, dist, tri = trimesh.proximity.closest_point(b, queries)
t2 = time.perf_counter()
print(f"rtree build {t1 - t0:.2f} s; queries {t2 - t1:.2f} s = {len(queries) / (t2 - t1):.0f} points/s; "
      f"mean distance {dist.mean():.4f} mm")
