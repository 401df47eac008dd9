//! Software rendering of surface meshes to pictures a person can read: smooth-shaded views from
//! fixed anatomical directions, labelled with the view and the patient's sides, with a colour bar
//! in millimetres for deviation maps and a legend when several meshes share the picture.
//!
//! Orthographic projection along a chosen LPS direction, z-buffer, per-pixel normals interpolated
//! from the vertex normals (so a marching-cubes staircase does not show as moiré terraces), a head
//! light plus a key light from the upper left, and 2 × 2 supersampling for smooth edges. No GPU
//! and no window: it runs wherever the tests run.
//!
//! Two levels:
//!
//! * [`render_mesh`]: one bare view of one mesh, optionally coloured per vertex.
//! * [`Figure`]: the picture for a report: a title (the case), one panel per view (front, left
//!   side, top and, with [`Figure::defect_view`], the view facing a defect), each labelled with
//!   its name and orientation letters, several meshes in their own colours or coloured by a
//!   signed deviation with a symmetric diverging colour bar whose range is stated in mm. The
//!   meshes are smoothed for display only (a few Taubin passes on a copy, see
//!   [`Figure::display_smoothing`]); the meshes passed in, and any STL made from them, are not
//!   touched.
//!
//! ```
//! use msd_geom::Mesh;
//! use msd_report::render::{Figure, Paint};
//!
//! // An octahedron 40 mm across, coloured by a made-up deviation.
//! let v = vec![[20.0, 0.0, 0.0], [-20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, -20.0, 0.0], [0.0, 0.0, 20.0], [0.0, 0.0, -20.0]];
//! let t = vec![[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]];
//! let mesh = Mesh::new(v, t)?;
//! let deviation = [1.0, -1.0, 0.5, -0.5, 0.0, 0.2];
//! let image = Figure::new("case 1")
//!     .layer("prediction", &mesh, Paint::Deviation(&deviation))
//!     .panel_px(160)
//!     .render()?;
//! assert!(image.width > 3 * 160);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::path::Path;

use msd_geom::{Mesh, SmoothOptions, smooth_taubin};

use crate::image::RgbImage;
use crate::{Error, Result};

/// Where the camera looks from (the view is orthographic). Every view is a true view, never a
/// mirror image: the patient's right is where a person standing there would see it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum View {
    /// From the front (anterior), superior up, patient's right on the image left.
    Anterior,
    /// From behind (posterior), superior up, patient's right on the image right.
    Posterior,
    /// From the patient's left side, superior up, anterior on the image left.
    Left,
    /// From the patient's right side, superior up, anterior on the image right.
    Right,
    /// From above (superior), anterior up, patient's right on the image right.
    Superior,
    /// From the direction `towards` (LPS, from the object towards the viewer; any length but
    /// zero), superior up as far as it can be (anterior up when looking along the z axis).
    Along([f64; 3]),
}

impl View {
    /// The short name used in panel labels: "front", "back", "left", "right", "top" or "oblique".
    pub fn name(self) -> &'static str {
        match self {
            View::Anterior => "front",
            View::Posterior => "back",
            View::Left => "left",
            View::Right => "right",
            View::Superior => "top",
            View::Along(_) => "oblique",
        }
    }

    /// (image x axis, image up axis, towards-viewer axis) as unit vectors in LPS; x × up points
    /// towards the viewer (a right-handed screen frame, so the image is not mirrored).
    fn axes(self) -> Result<([f64; 3], [f64; 3], [f64; 3])> {
        Ok(match self {
            View::Anterior => ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]),
            View::Posterior => ([-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
            View::Left => ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]),
            View::Right => ([0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]),
            View::Superior => ([-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]),
            View::Along(d) => {
                let len = dot(d, d).sqrt();
                if !(len.is_finite() && len > 0.0) {
                    return Err(Error::InvalidConfig { what: format!("view direction {d:?} has no length") });
                }
                let towards = d.map(|c| c / len);
                // Superior up, unless we look (nearly) along z: then anterior up, as in Superior.
                let hint = if towards[2].abs() > 0.95 { [0.0, -1.0, 0.0] } else { [0.0, 0.0, 1.0] };
                let up = normalise(sub(hint, scale(towards, dot(hint, towards))));
                (cross(up, towards), up, towards)
            }
        })
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    a.map(|c| c * s)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn normalise(a: [f64; 3]) -> [f64; 3] {
    let l = dot(a, a).sqrt();
    if l > 0.0 { scale(a, 1.0 / l) } else { a }
}

/// The LPS letter of the direction `v` points to (its largest component): L/R, P/A, S/I.
pub(crate) fn lps_letter(v: [f64; 3]) -> char {
    let k = (0..3).max_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs())).unwrap_or(0);
    [['L', 'R'], ['P', 'A'], ['S', 'I']][k][usize::from(v[k] < 0.0)]
}

/// Bone colour of a plain skull render.
pub const BONE_COLOUR: [u8; 3] = [235, 225, 200];
/// Colour of an implant when it is drawn with a skull.
pub const IMPLANT_COLOUR: [u8; 3] = [70, 160, 235];

/// One mesh of the scene with the colours it is painted in, prepared for rasterising.
struct Prepared {
    vertices: Vec<[f32; 3]>,
    normals: Vec<[f32; 3]>,
    triangles: Vec<[u32; 3]>,
    colours: Colours,
}

enum Colours {
    Solid([u8; 3]),
    PerVertex(Vec<[u8; 3]>),
}

/// The one scale (pixels per mm) that fits the scene into every view of a picture, so
/// millimetres look the same in every panel.
struct Fit {
    scale: f64,
}

/// Renders `mesh` seen from `view` into a `size` × `size` image on a white background. With
/// `colours` (one RGB per vertex) the surface takes them, shaded; otherwise it is bone-coloured.
/// The mesh is drawn as given (no display smoothing; see [`Figure`] for that and for labels).
pub fn render_mesh(mesh: &Mesh, view: View, size: usize, colours: Option<&[[u8; 3]]>) -> Result<RgbImage> {
    if let Some(c) = colours
        && c.len() != mesh.vertices().len()
    {
        return Err(Error::InvalidConfig {
            what: format!("{} vertex colours for {} vertices", c.len(), mesh.vertices().len()),
        });
    }
    check_size(size)?;
    let colours = match colours {
        Some(c) => Colours::PerVertex(c.to_vec()),
        None => Colours::Solid(BONE_COLOUR),
    };
    let prepared = [prepare(mesh, colours)];
    let axes = view.axes()?;
    let Some(fit) = fit(&prepared, &[axes], size, size) else {
        return Ok(RgbImage::filled(size, size, [255; 3]));
    };
    Ok(rasterise(&prepared, axes, &fit, size, size, [255; 3]))
}

fn check_size(size: usize) -> Result<()> {
    if !(16..=8192).contains(&size) {
        return Err(Error::InvalidConfig { what: format!("render size {size} px (16..=8192)") });
    }
    Ok(())
}

fn prepare(mesh: &Mesh, colours: Colours) -> Prepared {
    Prepared {
        normals: mesh.vertex_normals(),
        vertices: mesh.vertices().to_vec(),
        triangles: mesh.triangles().to_vec(),
        colours,
    }
}

/// The one scale that fits the whole scene into every view's `width` × `height`; `None` for an
/// empty scene.
fn fit(
    scene: &[Prepared],
    views: &[([f64; 3], [f64; 3], [f64; 3])],
    width: usize,
    height: usize,
) -> Option<Fit> {
    let (lo, hi) = scene_bounds(scene)?;
    // The bounding box's projected half-extents bound the scene in any view.
    let half = [0, 1, 2].map(|k| (hi[k] - lo[k]) / 2.0);
    let mut scale = f64::INFINITY;
    for &(ex, ey, _) in views {
        let wx: f64 = (0..3).map(|k| ex[k].abs() * half[k]).sum();
        let wy: f64 = (0..3).map(|k| ey[k].abs() * half[k]).sum();
        scale = scale.min(0.46 * width as f64 / wx.max(1e-9)).min(0.46 * height as f64 / wy.max(1e-9));
    }
    Some(Fit { scale })
}

fn scene_bounds(scene: &[Prepared]) -> Option<([f64; 3], [f64; 3])> {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in scene.iter().flat_map(|m| &m.vertices) {
        for k in 0..3 {
            lo[k] = lo[k].min(f64::from(p[k]));
            hi[k] = hi[k].max(f64::from(p[k]));
        }
    }
    (lo[0] <= hi[0]).then_some((lo, hi))
}

/// Draws the scene seen along `axes` into a `width` × `height` image over `background`, with
/// 2 × 2 supersampling.
fn rasterise(
    scene: &[Prepared],
    axes: ([f64; 3], [f64; 3], [f64; 3]),
    fit: &Fit,
    width: usize,
    height: usize,
    background: [u8; 3],
) -> RgbImage {
    const SS: usize = 2;
    let (ew, eh) = (width * SS, height * SS);
    let (ex, ey, ez) = axes;
    let (lo, hi) = scene_bounds(scene).unwrap_or(([0.0; 3], [0.0; 3]));
    let centre3 = [0, 1, 2].map(|k| (lo[k] + hi[k]) / 2.0);
    let c = [dot(centre3, ex), dot(centre3, ey)];
    let s = fit.scale * SS as f64;
    // Lights in view space: a head light and a key light from the upper left, towards the viewer.
    let head = ez;
    let key = normalise([
        -0.45 * ex[0] + 0.55 * ey[0] + 0.7 * ez[0],
        -0.45 * ex[1] + 0.55 * ey[1] + 0.7 * ez[1],
        -0.45 * ex[2] + 0.55 * ey[2] + 0.7 * ez[2],
    ]);
    let half = normalise([key[0] + ez[0], key[1] + ez[1], key[2] + ez[2]]);
    let mut depth = vec![f64::NEG_INFINITY; ew * eh];
    let mut rgb =
        vec![[f64::from(background[0]), f64::from(background[1]), f64::from(background[2])]; ew * eh];
    for m in scene {
        let screen: Vec<[f64; 3]> = m
            .vertices
            .iter()
            .map(|&p| {
                let p = p.map(f64::from);
                [
                    ew as f64 / 2.0 + (dot(p, ex) - c[0]) * s,
                    eh as f64 / 2.0 - (dot(p, ey) - c[1]) * s,
                    dot(p, ez),
                ]
            })
            .collect();
        for tri in &m.triangles {
            let [a, b, cc] = tri.map(|i| screen[i as usize]);
            let area = (b[0] - a[0]) * (cc[1] - a[1]) - (b[1] - a[1]) * (cc[0] - a[0]);
            if area.abs() < 1e-12 {
                continue;
            }
            let x0 = a[0].min(b[0]).min(cc[0]).floor().max(0.0) as usize;
            let x1 = (a[0].max(b[0]).max(cc[0]).ceil().max(0.0) as usize).min(ew - 1);
            let y0 = a[1].min(b[1]).min(cc[1]).floor().max(0.0) as usize;
            let y1 = (a[1].max(b[1]).max(cc[1]).ceil().max(0.0) as usize).min(eh - 1);
            let [na, nb, nc] = tri.map(|i| m.normals[i as usize].map(f64::from));
            let cols = match &m.colours {
                Colours::Solid(c) => [*c; 3],
                Colours::PerVertex(cs) => tri.map(|i| cs[i as usize]),
            };
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let p = [x as f64 + 0.5, y as f64 + 0.5];
                    let w0 = ((b[0] - p[0]) * (cc[1] - p[1]) - (b[1] - p[1]) * (cc[0] - p[0])) / area;
                    let w1 = ((cc[0] - p[0]) * (a[1] - p[1]) - (cc[1] - p[1]) * (a[0] - p[0])) / area;
                    let w2 = 1.0 - w0 - w1;
                    if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                        continue;
                    }
                    let z = w0 * a[2] + w1 * b[2] + w2 * cc[2];
                    let i = y * ew + x;
                    if z <= depth[i] {
                        continue;
                    }
                    depth[i] = z;
                    let mut n = normalise([0, 1, 2].map(|k| w0 * na[k] + w1 * nb[k] + w2 * nc[k]));
                    // Both sides are lit, so open meshes and inner surfaces still read.
                    if dot(n, ez) < 0.0 {
                        n = scale(n, -1.0);
                    }
                    let diffuse = 0.45 * dot(n, head).max(0.0) + 0.45 * dot(n, key).max(0.0);
                    let specular = 0.18 * dot(n, half).max(0.0).powi(24);
                    let shade = 0.2 + diffuse;
                    rgb[i] = [0, 1, 2].map(|k| {
                        let base = w0 * f64::from(cols[0][k])
                            + w1 * f64::from(cols[1][k])
                            + w2 * f64::from(cols[2][k]);
                        base * shade + 255.0 * specular
                    });
                }
            }
        }
    }
    let mut image = RgbImage::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let mut acc = [0.0; 3];
            for dy in 0..SS {
                for dx in 0..SS {
                    let p = rgb[(y * SS + dy) * ew + x * SS + dx];
                    for k in 0..3 {
                        acc[k] += p[k];
                    }
                }
            }
            image.put(x, y, acc.map(|v| (v / (SS * SS) as f64).round().clamp(0.0, 255.0) as u8));
        }
    }
    image
}

/// How a mesh of a [`Figure`] is coloured.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Paint<'a> {
    /// One colour (RGB), shaded.
    Solid([u8; 3]),
    /// A signed deviation per vertex (mm, positive outside the reference), on the figure's
    /// symmetric diverging scale: blue (inside) through white (0) to red (outside).
    Deviation(&'a [f32]),
}

/// One mesh of a [`Figure`], with its legend name and paint.
#[derive(Debug, Clone, Copy)]
struct Layer<'a> {
    name: &'a str,
    mesh: &'a Mesh,
    paint: Paint<'a>,
}

/// Background of figures (dark, so that white, bone and both ends of the deviation scale read).
pub const FIGURE_BACKGROUND: [u8; 3] = [34, 38, 46];
/// Colour of the figures' text, letters and colour-bar ticks.
pub const FIGURE_TEXT: [u8; 3] = [240, 240, 240];

/// An annotated picture of one case's meshes: a title, one labelled panel per view, a colour bar
/// for deviation maps and a legend. Build with the chainable setters, finish with
/// [`Figure::render`] or [`Figure::write_png`].
#[derive(Debug, Clone)]
pub struct Figure<'a> {
    title: String,
    layers: Vec<Layer<'a>>,
    views: Vec<(View, String)>,
    panel_px: usize,
    smoothing: usize,
    range_mm: Option<f64>,
}

impl<'a> Figure<'a> {
    /// A figure titled `title` (the case name) with the front, left-side and top views, 360-pixel
    /// panels, 12 display-smoothing passes and an automatic deviation range.
    pub fn new(title: impl Into<String>) -> Self {
        Figure {
            title: title.into(),
            layers: Vec::new(),
            views: [View::Anterior, View::Left, View::Superior].map(|v| (v, v.name().to_string())).to_vec(),
            panel_px: 360,
            smoothing: 12,
            range_mm: None,
        }
    }

    /// Adds a mesh named `name` in the legend, painted with `paint`. A deviation must have one
    /// value per vertex.
    pub fn layer(mut self, name: &'a str, mesh: &'a Mesh, paint: Paint<'a>) -> Self {
        self.layers.push(Layer { name, mesh, paint });
        self
    }

    /// Replaces the views (each panel is labelled with [`View::name`]).
    pub fn views(mut self, views: &[View]) -> Self {
        self.views = views.iter().map(|&v| (v, v.name().to_string())).collect();
        self
    }

    /// Adds a panel labelled "defect" that looks at the scene from `towards` (LPS, from the
    /// skull's centre towards the defect), so the defect faces the reader.
    pub fn defect_view(mut self, towards: [f64; 3]) -> Self {
        self.views.push((View::Along(towards), "defect".to_string()));
        self
    }

    /// Panel size in pixels (square; 64 to 4096).
    pub fn panel_px(mut self, px: usize) -> Self {
        self.panel_px = px;
        self
    }

    /// Taubin λ|μ passes applied to copies of the meshes before drawing, to hide the 1 mm voxel
    /// staircase of a marching-cubes surface (0: draw the meshes as they are).
    pub fn display_smoothing(mut self, passes: usize) -> Self {
        self.smoothing = passes;
        self
    }

    /// The deviation colour bar's range ±`range_mm`; by default the 95th percentile of |deviation|
    /// rounded up to 0.5, 1, 2, 3 or 5 × 10ⁿ mm.
    pub fn deviation_range_mm(mut self, range_mm: f64) -> Self {
        self.range_mm = Some(range_mm);
        self
    }

    /// The colour range ±mm that [`Figure::render`] uses, `None` when no layer is a deviation.
    pub fn range_mm(&self) -> Option<f64> {
        let deviations: Vec<&[f32]> = self
            .layers
            .iter()
            .filter_map(|l| match l.paint {
                Paint::Deviation(d) => Some(d),
                Paint::Solid(_) => None,
            })
            .collect();
        if deviations.is_empty() {
            return None;
        }
        Some(self.range_mm.unwrap_or_else(|| auto_range_mm(deviations.into_iter().flatten().copied())))
    }

    /// Draws the figure.
    pub fn render(&self) -> Result<RgbImage> {
        let panel = self.panel_px;
        if !(64..=4096).contains(&panel) {
            return Err(Error::InvalidConfig { what: format!("figure panel size {panel} px (64..=4096)") });
        }
        if self.views.is_empty() {
            return Err(Error::InvalidConfig { what: "a figure needs at least one view".into() });
        }
        let range = self.range_mm();
        if let Some(r) = range
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::InvalidConfig {
                what: format!("deviation range ±{r} mm must be finite and positive"),
            });
        }
        let mut scene = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let n = layer.mesh.vertices().len();
            let colours = match layer.paint {
                Paint::Solid(c) => Colours::Solid(c),
                Paint::Deviation(d) if d.len() != n => {
                    return Err(Error::InvalidConfig {
                        what: format!("{} deviation values for the {n} vertices of {}", d.len(), layer.name),
                    });
                }
                Paint::Deviation(d) => Colours::PerVertex(
                    d.iter()
                        .map(|&v| msd_metrics::deviation_colour(f64::from(v), range.unwrap_or(1.0)))
                        .collect(),
                ),
            };
            let shown = if self.smoothing > 0 && !layer.mesh.is_empty() {
                smooth_taubin(
                    layer.mesh,
                    &SmoothOptions { iterations: self.smoothing, ..SmoothOptions::default() },
                )?
            } else {
                layer.mesh.clone()
            };
            scene.push(prepare(&shown, colours));
        }
        let axes = self.views.iter().map(|(v, _)| v.axes()).collect::<Result<Vec<_>>>()?;
        let text = if panel >= 300 { 2 } else { 1 };
        let th = RgbImage::text_height(text);
        let title_h = 2 * th + 4 * text;
        let bar_w = if range.is_some() { 12 * th } else { 0 };
        let legend_h = th + 8 * text;
        // A gap between panels keeps one panel's side letter apart from the next one's.
        let gap = 2 * th;
        let width = (panel + gap) * self.views.len() + bar_w;
        let height = title_h + panel + legend_h;
        let mut out = RgbImage::filled(width, height, FIGURE_BACKGROUND);
        let mut title = self.title.clone();
        if let Some(r) = range {
            title.push_str(&format!("  (deviation, ±{} mm)", format_mm_value(r)));
        }
        out.draw_text(4 * text, (title_h - th) / 2, &title, FIGURE_TEXT, text);
        if let Some(fit) = fit(&scene, &axes, panel, panel) {
            for (k, (&ax, (_, label))) in axes.iter().zip(&self.views).enumerate() {
                let img = rasterise(&scene, ax, &fit, panel, panel, FIGURE_BACKGROUND);
                let x0 = k * (panel + gap);
                out.blit(&img, x0, title_h);
                draw_panel_labels(&mut out, x0, title_h, panel, label, ax, text);
            }
        }
        if let Some(r) = range {
            draw_colour_bar(&mut out, (panel + gap) * self.views.len(), title_h, panel, r, text);
        }
        let mut lx = 4 * text;
        let ly = title_h + panel + 4 * text;
        for layer in &self.layers {
            let swatch = match layer.paint {
                Paint::Solid(c) => vec![c],
                Paint::Deviation(_) => vec![[40, 60, 255], [255, 255, 255], [255, 40, 40]],
            };
            for c in &swatch {
                out.fill_rect(lx, ly, lx + th, ly + th, *c);
                lx += th;
            }
            lx += 3 * text;
            lx += out.draw_text(lx, ly, layer.name, FIGURE_TEXT, text) + 10 * text;
        }
        Ok(out)
    }

    /// Draws the figure and writes it as PNG (atomically).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        self.render()?.write_png(path)
    }
}

/// The default deviation colour range: the 95th percentile of |deviation| (ignoring non-finite
/// values) rounded up by [`nice_range`]; 1 mm when there are no values.
pub(crate) fn auto_range_mm(values: impl Iterator<Item = f32>) -> f64 {
    let mut abs: Vec<f32> = values.map(f32::abs).filter(|v| v.is_finite()).collect();
    abs.sort_unstable_by(f32::total_cmp);
    let p95 = abs.get(((abs.len() as f64 * 0.95) as usize).min(abs.len().saturating_sub(1)));
    nice_range(p95.map_or(1.0, |&v| f64::from(v)))
}

/// Rounds `mm` up to 1, 2, 3 or 5 × 10ⁿ (at least 0.1 mm): a colour range that reads.
pub(crate) fn nice_range(mm: f64) -> f64 {
    let mm = if mm.is_finite() { mm.max(0.1) } else { 1.0 };
    let exp = 10f64.powf(mm.log10().floor());
    [1.0, 2.0, 3.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * exp)
        .find(|&r| r >= mm * (1.0 - 1e-9))
        .unwrap_or(10.0 * exp)
}

fn format_mm_value(mm: f64) -> String {
    if (mm - mm.round()).abs() < 1e-9 { format!("{mm:.0}") } else { format!("{mm:.1}") }
}

/// The panel's name at its top-left and the patient's sides at the middle of each edge.
fn draw_panel_labels(
    out: &mut RgbImage,
    x0: usize,
    y0: usize,
    panel: usize,
    label: &str,
    (ex, ey, _): ([f64; 3], [f64; 3], [f64; 3]),
    text: usize,
) {
    let th = RgbImage::text_height(text);
    let cw = RgbImage::text_width("M", text);
    out.draw_text(x0 + 4 * text, y0 + 3 * text, label, FIGURE_TEXT, text);
    let letter = |v: [f64; 3]| lps_letter(v).to_string();
    let mid = panel / 2;
    out.draw_text(x0 + mid - cw / 2, y0 + 3 * text, &letter(ey), FIGURE_TEXT, text);
    out.draw_text(x0 + mid - cw / 2, y0 + panel - th - 3 * text, &letter(scale(ey, -1.0)), FIGURE_TEXT, text);
    out.draw_text(x0 + 3 * text, y0 + mid - th / 2, &letter(scale(ex, -1.0)), FIGURE_TEXT, text);
    out.draw_text(x0 + panel - cw - 3 * text, y0 + mid - th / 2, &letter(ex), FIGURE_TEXT, text);
}

/// A vertical colour bar over ±`range` mm with ticks every half range and their values.
fn draw_colour_bar(out: &mut RgbImage, x0: usize, y0: usize, height: usize, range: f64, text: usize) {
    let th = RgbImage::text_height(text);
    let bar_x = x0 + 3 * text;
    let bar_w = 6 * text + th;
    let top = y0 + 2 * th + 14 * text;
    let bottom = y0 + height - 2 * th - 14 * text;
    out.draw_text(bar_x, y0 + 3 * text, "mm", FIGURE_TEXT, text);
    out.draw_text(bar_x, top - th - 6 * text, "outside", FIGURE_TEXT, text);
    out.draw_text(bar_x, bottom + 6 * text, "inside", FIGURE_TEXT, text);
    let span = (bottom - top).max(1) as f64;
    for y in top..bottom {
        let v = range * (1.0 - 2.0 * (y - top) as f64 / span);
        out.fill_rect(bar_x, y, bar_x + bar_w, y + 1, msd_metrics::deviation_colour(v, range));
    }
    out.stroke_rect(bar_x, top, bar_x + bar_w, bottom, FIGURE_TEXT);
    for k in 0..=4 {
        let v = range * (1.0 - 0.5 * k as f64);
        let y = top + ((bottom - top) * k) / 4;
        out.fill_rect(
            bar_x + bar_w,
            y.min(bottom - 1),
            bar_x + bar_w + 3 * text,
            y.min(bottom - 1) + text,
            FIGURE_TEXT,
        );
        let label = if v.abs() < 1e-12 { "0".to_string() } else { format!("{:+.1}", v) };
        let ty = y.saturating_sub(th / 2);
        out.draw_text(bar_x + bar_w + 5 * text, ty, &label, FIGURE_TEXT, text);
    }
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
                        let p = img.get(i % 128, i / 128).map(i32::from);
                        if red { p[0] > p[2] + 60 } else { p[2] > p[0] + 60 }
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
        let (red, blue) = columns(View::Posterior);
        assert!(red > blue, "from behind the patient's right is on the image right");
        let (red, blue) = columns(View::Superior);
        assert!(red > blue, "from above (anterior up) the patient's right is on the image right");
        let (red, blue) = columns(View::Left);
        assert!(blue < red, "from the left the anterior (blue) is on the image left");
        let (red, blue) = columns(View::Right);
        assert!(blue > red, "from the right the anterior (blue) is on the image right");
        let (red, blue) = columns(View::Along([0.0, -2.0, 0.0]));
        assert!(red < blue, "along −y is the front view");
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
        assert!(img.pixels.chunks(3).any(|p| p[0] < 40 && p[1] < 40 && p[2] > 100));
        assert!(render_mesh(&tetrahedron(), View::Left, 64, Some(&blue[..3])).is_err());
        let empty = render_mesh(&Mesh::default(), View::Left, 32, None).unwrap();
        assert!(empty.pixels.iter().all(|&v| v == 255));
        assert!(render_mesh(&tetrahedron(), View::Along([0.0; 3]), 64, None).is_err());
    }

    #[test]
    fn oblique_views_are_right_handed() {
        for d in [[1.0, 2.0, 0.5], [0.0, 0.0, 1.0], [0.1, -0.1, -1.0], [-3.0, 0.0, 0.0]] {
            let (x, up, towards) = View::Along(d).axes().unwrap();
            let c = cross(x, up);
            assert!((0..3).all(|k| (c[k] - towards[k]).abs() < 1e-9), "{d:?}");
            assert!(dot(x, up).abs() < 1e-9 && (dot(up, up) - 1.0).abs() < 1e-9);
        }
        assert_eq!(nice_range(0.73), 1.0);
        assert_eq!(nice_range(2.2), 3.0);
        assert_eq!(nice_range(0.04), 0.1);
        assert_eq!(nice_range(5.0), 5.0);
    }

    /// A 1 mm staircase: the marching-cubes surface of a voxelised ellipsoid.
    fn staircase_ellipsoid() -> Mesh {
        use msd_io::{Geometry, LabelVolume};
        let g = Geometry::new([1.0; 3], [-40.0, -50.0, -30.0], Geometry::IDENTITY).unwrap();
        let labels = LabelVolume::new(
            ndarray::Array3::from_shape_fn((61, 101, 81), |(z, y, x)| {
                let (dx, dy, dz) =
                    ((x as f64 - 40.0) / 36.0, (y as f64 - 50.0) / 46.0, (z as f64 - 30.0) / 27.0);
                u8::from(dx * dx + dy * dy + dz * dz < 1.0)
            }),
            g,
        )
        .unwrap();
        msd_geom::label_surface(&labels, 1).unwrap()
    }

    fn is_background(p: [u8; 3]) -> bool {
        p == FIGURE_BACKGROUND
    }

    /// Mean absolute luminance step between horizontal neighbours inside the mesh: high for the
    /// moiré rings of a flat-shaded staircase, low for a smooth surface.
    fn roughness(img: &RgbImage, x0: usize, y0: usize, size: usize) -> f64 {
        let lum = |p: [u8; 3]| 0.3 * f64::from(p[0]) + 0.59 * f64::from(p[1]) + 0.11 * f64::from(p[2]);
        let (mut sum, mut n) = (0.0, 0usize);
        for y in y0 + size / 4..y0 + 3 * size / 4 {
            for x in x0 + size / 4..x0 + 3 * size / 4 {
                let (a, b) = (img.get(x, y), img.get(x + 1, y));
                if !is_background(a) && !is_background(b) {
                    sum += (lum(a) - lum(b)).abs();
                    n += 1;
                }
            }
        }
        sum / n.max(1) as f64
    }

    /// The deviation figure of a staircase mesh: every panel shows the mesh, the colour bar is
    /// there with both ends of the scale, the range is stated, and display smoothing removes the
    /// terraces (issue #16).
    #[test]
    fn deviation_figure_has_mesh_panels_a_colour_bar_and_smooth_shading() {
        let mesh = staircase_ellipsoid();
        let deviation: Vec<f32> = mesh.vertices().iter().map(|p| p[0] / 20.0).collect();
        let figure =
            Figure::new("ellipsoid").layer("test", &mesh, Paint::Deviation(&deviation)).panel_px(200);
        assert_eq!(figure.range_mm(), Some(2.0));
        let img = figure.render().unwrap();
        let panel = 200;
        let title_h = 2 * RgbImage::text_height(1) + 4;
        let step = panel + 2 * RgbImage::text_height(1);
        assert!(img.width > 3 * step, "a colour bar beside the three panels");
        for k in 0..3 {
            let drawn =
                img.count_in(k * step, title_h, k * step + panel, title_h + panel, |p| !is_background(p));
            assert!(drawn > panel * panel / 5, "panel {k}: {drawn} mesh pixels");
        }
        // The colour bar: saturated red at the top, saturated blue at the bottom, white between.
        let bar = |f: fn([u8; 3]) -> bool| img.count_in(3 * step, title_h, img.width, title_h + panel, f);
        assert!(bar(|p| p[0] > 240 && p[1] < 40 && p[2] < 40) > 20, "red end of the bar");
        assert!(bar(|p| p[2] > 240 && p[0] < 40 && p[1] < 40) > 20, "blue end of the bar");
        assert!(bar(|p| p[0] > 245 && p[1] > 245 && p[2] > 245) > 20, "white middle and text");
        // Display smoothing: the top view of the staircase is far less terraced.
        let flat = Figure::new("e")
            .layer("t", &mesh, Paint::Solid(BONE_COLOUR))
            .views(&[View::Superior])
            .panel_px(200);
        let raw = flat.clone().display_smoothing(0).render().unwrap();
        let smooth = flat.render().unwrap();
        let (r0, r1) = (roughness(&raw, 0, title_h, panel), roughness(&smooth, 0, title_h, panel));
        assert!(r1 < 0.6 * r0, "smoothing should calm the terraces: {r0:.2} → {r1:.2}");
        // The mesh passed in is untouched.
        assert_eq!(mesh, staircase_ellipsoid());
    }

    #[test]
    fn skull_and_implant_take_their_own_colours_and_the_defect_view_is_added() {
        let skull = staircase_ellipsoid();
        let implant = tetrahedron();
        let img = Figure::new("case")
            .layer("skull", &skull, Paint::Solid(BONE_COLOUR))
            .layer("implant", &implant, Paint::Solid(IMPLANT_COLOUR))
            .defect_view([0.0, 0.0, 1.0])
            .panel_px(128)
            .display_smoothing(0)
            .render()
            .unwrap();
        assert_eq!(img.width, 4 * (128 + 2 * RgbImage::text_height(1)));
        let wide = |p: [u8; 3]| p.map(i32::from);
        let bluish = img.count_in(0, 0, img.width, img.height, |p| wide(p)[2] > wide(p)[0] + 40 && p[2] > 80);
        let bone = img.count_in(0, 0, img.width, img.height, |p| {
            wide(p)[0] > wide(p)[2] + 15 && wide(p)[1] > wide(p)[2] + 5
        });
        assert!(bluish > 30 && bone > 1000, "implant {bluish}, skull {bone}");
        assert!(Figure::new("x").layer("bad", &implant, Paint::Deviation(&[1.0])).render().is_err());
        assert!(Figure::new("x").panel_px(10).render().is_err());
    }
}
