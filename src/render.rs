//! Software rendering of a surface mesh to a PNG: a shaded view for reports and READMEs, optionally
//! coloured per vertex (a deviation map from `msd_metrics::signed_vertex_distances`).
//!
//! Orthographic projection along a chosen LPS direction, z-buffer, Lambert shading with a head
//! light. No GPU and no window: it runs wherever the tests run.
use msd_geom::Mesh;

use crate::preview::RgbImage;
use crate::{Error, Result};

/// Where the camera looks from (the view is orthographic, superior up). Every view is a true
/// view, never a mirror image: the patient's right is where a person standing there would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// From the front (anterior), patient's right on the image left.
    Anterior,
    /// From the patient's left side, anterior on the image left.
    Left,
    /// From the patient's right side, anterior on the image right.
    Right,
    /// From above (superior), anterior up, patient's right on the image right.
    Superior,
}

impl View {
    /// (image x axis, image up axis, towards-viewer axis) as unit vectors in LPS; x × up points
    /// towards the viewer (a right-handed screen frame, so the image is not mirrored).
    fn axes(self) -> ([f64; 3], [f64; 3], [f64; 3]) {
        match self {
            View::Anterior => ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]),
            View::Left => ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]),
            View::Right => ([0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]),
            View::Superior => ([-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]),
        }
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Renders `mesh` seen from `view` into a `size` × `size` image on a white background. With
/// `colours` (one RGB per vertex) the surface takes them, shaded; otherwise it is bone-coloured.
pub fn render_mesh(mesh: &Mesh, view: View, size: usize, colours: Option<&[[u8; 3]]>) -> Result<RgbImage> {
    if let Some(c) = colours
        && c.len() != mesh.vertices().len()
    {
        return Err(Error::InvalidConfig {
            what: format!("{} vertex colours for {} vertices", c.len(), mesh.vertices().len()),
        });
    }
    if !(16..=8192).contains(&size) {
        return Err(Error::InvalidConfig { what: format!("render size {size} px (16..=8192)") });
    }
    let mut image = RgbImage::new(size, size);
    image.pixels.fill(255);
    let Some(bounds) = mesh.bounds() else {
        return Ok(image);
    };
    let (ex, ey, ez) = view.axes();
    let project = |p: [f32; 3]| {
        let p = [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])];
        [dot(p, ex), dot(p, ey), dot(p, ez)]
    };
    let corners: Vec<[f64; 3]> = (0..8)
        .map(|i| {
            let pick = |k: usize| if i >> k & 1 == 0 { bounds.min[k] } else { bounds.max[k] };
            project([pick(0), pick(1), pick(2)])
        })
        .collect();
    let (lo, hi) = corners.iter().fold(([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]), |(lo, hi), c| {
        ([lo[0].min(c[0]), lo[1].min(c[1])], [hi[0].max(c[0]), hi[1].max(c[1])])
    });
    let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
    let scale = 0.92 * size as f64 / extent;
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let to_pixel = |q: [f64; 3]| {
        [size as f64 / 2.0 + (q[0] - centre[0]) * scale, size as f64 / 2.0 - (q[1] - centre[1]) * scale, q[2]]
    };
    let screen: Vec<[f64; 3]> = mesh.vertices().iter().map(|&p| to_pixel(project(p))).collect();
    let normals = mesh.triangle_normals();
    let mut depth = vec![f64::NEG_INFINITY; size * size];
    for (t, tri) in mesh.triangles().iter().enumerate() {
        let [a, b, c] = tri.map(|i| screen[i as usize]);
        let n = normals[t];
        let facing = dot([f64::from(n[0]), f64::from(n[1]), f64::from(n[2])], ez);
        // Both sides are lit, so open meshes and inner surfaces still read.
        let shade = 0.25 + 0.75 * facing.abs();
        let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
        if area.abs() < 1e-12 {
            continue;
        }
        let x0 = a[0].min(b[0]).min(c[0]).floor().max(0.0) as usize;
        let x1 = (a[0].max(b[0]).max(c[0]).ceil() as usize).min(size - 1);
        let y0 = a[1].min(b[1]).min(c[1]).floor().max(0.0) as usize;
        let y1 = (a[1].max(b[1]).max(c[1]).ceil() as usize).min(size - 1);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let p = [x as f64 + 0.5, y as f64 + 0.5];
                let w0 = ((b[0] - p[0]) * (c[1] - p[1]) - (b[1] - p[1]) * (c[0] - p[0])) / area;
                let w1 = ((c[0] - p[0]) * (a[1] - p[1]) - (c[1] - p[1]) * (a[0] - p[0])) / area;
                let w2 = 1.0 - w0 - w1;
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let z = w0 * a[2] + w1 * b[2] + w2 * c[2];
                let i = y * size + x;
                if z <= depth[i] {
                    continue;
                }
                depth[i] = z;
                let base = match colours {
                    Some(cs) => {
                        let [ca, cb, cc] = tri.map(|v| cs[v as usize]);
                        [0, 1, 2]
                            .map(|k| w0 * f64::from(ca[k]) + w1 * f64::from(cb[k]) + w2 * f64::from(cc[k]))
                    }
                    None => [235.0, 225.0, 200.0],
                };
                image.put(x, y, base.map(|v| (v * shade).clamp(0.0, 255.0) as u8));
            }
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_not_mirror_images() {
        // Two tetrahedra: red on the patient's right (−x, L of LPS negative), blue on the left and
        // further forward (−y, anterior).
        let t = tetrahedron();
        let shift = |d: [f32; 3]| t.vertices().iter().map(move |v| [v[0] + d[0], v[1] + d[1], v[2] + d[2]]);
        let mut v: Vec<[f32; 3]> = shift([-50.0, 20.0, 0.0]).collect();
        v.extend(shift([50.0, -20.0, 0.0]));
        let mut tris = t.triangles().to_vec();
        tris.extend(t.triangles().iter().map(|tri| tri.map(|i| i + 4)));
        let mesh = Mesh::new(v, tris).unwrap();
        let colours: Vec<[u8; 3]> = [[255, 0, 0]; 4].into_iter().chain([[0, 0, 255]; 4]).collect();
        // Mean image column of the red and of the blue pixels.
        let columns = |view: View| {
            let img = render_mesh(&mesh, view, 128, Some(&colours)).unwrap();
            let mean = |red: bool| {
                let xs: Vec<f64> = (0..128 * 128)
                    .filter(|&i| {
                        let p = img.get(i % 128, i / 128);
                        if red { p[0] > 0 && p[2] == 0 } else { p[2] > 0 && p[0] == 0 }
                    })
                    .map(|i| (i % 128) as f64)
                    .collect();
                assert!(!xs.is_empty(), "{view:?}: no {} pixels", if red { "red" } else { "blue" });
                xs.iter().sum::<f64>() / xs.len() as f64
            };
            (mean(true), mean(false))
        };
        let (red, blue) = columns(View::Anterior);
        assert!(red < blue, "from the front the patient's right is on the image left");
        let (red, blue) = columns(View::Superior);
        assert!(red > blue, "from above (anterior up) the patient's right is on the image right");
        let (red, blue) = columns(View::Left);
        assert!(blue < red, "from the left the anterior (blue) is on the image left");
        let (red, blue) = columns(View::Right);
        assert!(blue > red, "from the right the anterior (blue) is on the image right");
    }

    fn tetrahedron() -> Mesh {
        let v = vec![[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]];
        Mesh::new(v, vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]).unwrap()
    }

    #[test]
    fn renders_the_mesh_over_a_white_background() {
        let img = render_mesh(&tetrahedron(), View::Anterior, 64, None).unwrap();
        assert_eq!(img.get(0, 0), [255, 255, 255]);
        let drawn = img.pixels.chunks(3).filter(|p| *p != [255, 255, 255]).count();
        assert!(drawn > 200 && drawn < 64 * 64, "{drawn}");
        let blue = vec![[0, 0, 255]; 4];
        let img = render_mesh(&tetrahedron(), View::Superior, 64, Some(&blue)).unwrap();
        assert!(img.pixels.chunks(3).any(|p| p[0] == 0 && p[1] == 0 && p[2] > 0));
        assert!(render_mesh(&tetrahedron(), View::Left, 64, Some(&blue[..3])).is_err());
        let empty = render_mesh(&Mesh::default(), View::Left, 32, None).unwrap();
        assert!(empty.pixels.iter().all(|&v| v == 255));
    }
}
