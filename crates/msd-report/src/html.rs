//! The study report as one self-contained HTML file: the metrics table (per case, then mean ± sd),
//! each case's pictures, and an interactive 3D view of each case's meshes (rotate, zoom, show or
//! hide each mesh, colour by deviation with its scale). It opens offline: the pictures are inlined
//! as base64 PNG, the meshes as base64 `Float32`/`Uint32` arrays, and three.js (MIT, vendored under
//! this crate's `assets/three/`) as a script.
//!
//! Meshes are reduced for display by vertex clustering ([`cluster_vertices`]) to at most
//! [`HtmlCase::with_max_vertices`] vertices each (default 12,000), so a five-case study stays a few
//! megabytes; measured sizes and opening times are in `docs/pictures.md`.
//!
//! ```
//! use msd_geom::Mesh;
//! use msd_report::html::{HtmlCase, HtmlReport, MeshRole};
//! use msd_report::image::RgbImage;
//!
//! let v = vec![[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]];
//! let tetra = Mesh::new(v, vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])?;
//! let case = HtmlCase::new("case1")
//!     .image("axial slice", &RgbImage::filled(8, 8, [0, 0, 0]))?
//!     .mesh("reference", MeshRole::Reference, &tetra, None)?
//!     .mesh("prediction", MeshRole::Prediction, &tetra, Some(&[0.5, -0.5, 0.0, 1.0]))?;
//! let html = HtmlReport::new("study").case(case).to_html();
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("case1"));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use msd_geom::Mesh;
use msd_metrics::Report;

use crate::image::RgbImage;
use crate::{Error, Result};

const THREE_JS: &str = include_str!("../assets/three/three.min.js");
const ORBIT_CONTROLS_JS: &str = include_str!("../assets/three/OrbitControls.js");
const VIEWER_JS: &str = include_str!("html/viewer.js");
const STYLE_CSS: &str = include_str!("html/style.css");

/// What a mesh of a case is, which sets its colour and whether it starts visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshRole {
    /// The reference (ground truth): green, visible, translucent when a prediction is shown.
    Reference,
    /// The prediction: bone-coloured, or coloured by its deviation when it has one.
    Prediction,
    /// A designed implant: blue.
    Implant,
}

impl MeshRole {
    fn colour(self) -> [u8; 3] {
        match self {
            MeshRole::Reference => crate::preview::REFERENCE_COLOUR,
            MeshRole::Prediction => crate::render::BONE_COLOUR,
            MeshRole::Implant => crate::render::IMPLANT_COLOUR,
        }
    }

    fn name(self) -> &'static str {
        match self {
            MeshRole::Reference => "reference",
            MeshRole::Prediction => "prediction",
            MeshRole::Implant => "implant",
        }
    }
}

/// One mesh of a case, reduced for display and encoded.
#[derive(Debug, Clone)]
struct EncodedMesh {
    name: String,
    role: MeshRole,
    vertices: usize,
    triangles: usize,
    positions_b64: String,
    indices_b64: String,
    deviation_b64: Option<String>,
}

/// One case of the report: its pictures and meshes. Meshes are reduced when added, with the
/// default vertex budget; see [`HtmlCase::with_max_vertices`].
#[derive(Debug, Clone)]
pub struct HtmlCase {
    name: String,
    images: Vec<(String, String)>,
    meshes: Vec<EncodedMesh>,
    max_vertices: usize,
    range_mm: Option<f64>,
}

impl HtmlCase {
    /// An empty case named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        HtmlCase {
            name: name.into(),
            images: Vec::new(),
            meshes: Vec::new(),
            max_vertices: HtmlReport::DEFAULT_MAX_VERTICES,
            range_mm: None,
        }
    }

    /// The same case with meshes added from now on reduced to at most `max_vertices` vertices
    /// (at least 100).
    pub fn with_max_vertices(mut self, max_vertices: usize) -> Self {
        self.max_vertices = max_vertices.max(100);
        self
    }

    /// Adds a picture with its caption (encoded as PNG and inlined).
    pub fn image(mut self, caption: impl Into<String>, image: &RgbImage) -> Result<Self> {
        self.images.push((caption.into(), base64(&image.to_png()?)));
        Ok(self)
    }

    /// Adds a PNG file's bytes as a picture with its caption.
    pub fn png_bytes(mut self, caption: impl Into<String>, png: &[u8]) -> Self {
        self.images.push((caption.into(), base64(png)));
        self
    }

    /// Adds a mesh named `name` playing `role`, with an optional signed deviation per vertex (mm,
    /// positive outside the reference) that the viewer can colour it by. A copy of the mesh is
    /// smoothed for display (10 Taubin passes, hiding a voxel staircase) and reduced by vertex
    /// clustering (deviations are averaged per cluster) before it is encoded.
    pub fn mesh(
        mut self,
        name: impl Into<String>,
        role: MeshRole,
        mesh: &Mesh,
        deviation: Option<&[f32]>,
    ) -> Result<Self> {
        let name = name.into();
        if let Some(d) = deviation
            && d.len() != mesh.vertices().len()
        {
            return Err(Error::InvalidConfig {
                what: format!(
                    "{} deviation values for the {} vertices of {name}",
                    d.len(),
                    mesh.vertices().len()
                ),
            });
        }
        // Smoothed for display only (a copy): clustering a 1 mm staircase keeps its terraces.
        let smooth = if mesh.is_empty() {
            mesh.clone()
        } else {
            msd_geom::smooth_taubin(mesh, &msd_geom::SmoothOptions { iterations: 10, ..Default::default() })?
        };
        let reduced = cluster_vertices(&smooth, deviation, self.max_vertices);
        if let Some(d) = &reduced.deviation {
            let range = crate::render::auto_range_mm(d.iter().copied());
            self.range_mm = Some(self.range_mm.map_or(range, |r| r.max(range)));
        }
        let positions: Vec<u8> = reduced.vertices.iter().flatten().flat_map(|c| c.to_le_bytes()).collect();
        let indices: Vec<u8> = reduced.triangles.iter().flatten().flat_map(|i| i.to_le_bytes()).collect();
        self.meshes.push(EncodedMesh {
            name,
            role,
            vertices: reduced.vertices.len(),
            triangles: reduced.triangles.len(),
            positions_b64: base64(&positions),
            indices_b64: base64(&indices),
            deviation_b64: reduced
                .deviation
                .map(|d| base64(&d.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())),
        });
        Ok(self)
    }

    /// A case of an evaluation: the prediction's and the reference's surfaces (a [`Mesh`] as it is;
    /// `msd_pipeline::Shape` meshes a label volume with `SurfaceOptions`' defaults), the prediction
    /// coloured by its signed distance to the reference, a [`Figure`](crate::render::Figure) of
    /// it (front, left, top) and the histogram of the distances
    /// ([`deviation_histogram`](crate::histogram::deviation_histogram)). An empty prediction is shown without deviation. The error is the
    /// shapes' own ([`CaseSurface::Error`]), which the report's errors convert into.
    pub fn from_shapes<S: CaseSurface>(
        name: impl Into<String>,
        pred: &S,
        reference: &S,
    ) -> Result<Self, S::Error> {
        let name = name.into();
        let pred = pred.case_surface()?;
        let reference = reference.case_surface()?;
        Self::from_meshes(name, &pred, &reference).map_err(S::Error::from)
    }

    fn from_meshes(name: String, pred: &Mesh, reference: &Mesh) -> Result<Self> {
        let deviation = if pred.is_empty() || reference.is_empty() {
            None
        } else {
            Some(msd_metrics::signed_vertex_distances(pred, reference)?)
        };
        let mut figure = crate::render::Figure::new(format!("{name}: prediction vs reference")).panel_px(300);
        let paint = match &deviation {
            Some(d) => crate::render::Paint::Deviation(d),
            None => crate::render::Paint::Solid(crate::render::BONE_COLOUR),
        };
        figure = figure.layer("prediction, signed distance to the reference", pred, paint);
        let image = figure.render()?;
        let mut case = HtmlCase::new(name)
            .image("The prediction's surface coloured by its signed distance to the reference", &image)?;
        if let Some(d) = &deviation {
            let map = msd_metrics::DeviationMap::from_values(pred.clone(), d.clone())?;
            let histogram = crate::histogram::deviation_histogram(&map, 60, None)?;
            case = case
                .image("How much of the prediction's surface lies how far from the reference", &histogram)?;
        }
        case.mesh("reference", MeshRole::Reference, reference, None)?.mesh(
            "prediction",
            MeshRole::Prediction,
            pred,
            deviation.as_deref(),
        )
    }

    /// The deviation colour range ±mm the viewer uses: the 95th percentile of |deviation| over the
    /// case's meshes, rounded up to 0.5, 1, 2, 3 or 5 × 10ⁿ mm (`None` without deviations).
    pub fn range_mm(&self) -> Option<f64> {
        self.range_mm
    }
}

/// A prediction or reference that [`HtmlCase::from_shapes`] can draw: a [`Mesh`] as it is, or
/// something meshed first (`msd_pipeline::Shape`, a label volume or a mesh, implements it with
/// `SurfaceOptions`' defaults).
pub trait CaseSurface {
    /// The error of getting the surface; the report's own errors convert into it.
    type Error: From<Error>;

    /// The surface in LPS millimetres.
    fn case_surface(&self) -> Result<Cow<'_, Mesh>, Self::Error>;
}

impl CaseSurface for Mesh {
    type Error = Error;

    fn case_surface(&self) -> Result<Cow<'_, Mesh>> {
        Ok(Cow::Borrowed(self))
    }
}

/// A study report: a title, the metrics table and the cases. Finish with [`HtmlReport::to_html`]
/// or [`HtmlReport::write`].
#[derive(Debug, Clone, Default)]
pub struct HtmlReport {
    title: String,
    intro: String,
    tables: Vec<(String, String)>,
    cases: Vec<HtmlCase>,
}

impl HtmlReport {
    /// Default vertex budget per mesh ([`HtmlCase::with_max_vertices`]).
    pub const DEFAULT_MAX_VERTICES: usize = 12_000;

    /// An empty report titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        HtmlReport { title: title.into(), ..HtmlReport::default() }
    }

    /// A paragraph of plain text shown under the title (escaped).
    pub fn intro(mut self, text: impl Into<String>) -> Self {
        self.intro = text.into();
        self
    }

    /// Adds a study table titled `caption` from an evaluation report: one row per case, then
    /// mean ± sd over the cases for each measure (and the region's measures when the report has a
    /// region).
    pub fn table(mut self, caption: impl Into<String>, report: &Report) -> Self {
        self.tables.push((caption.into(), table_html(report)));
        self
    }

    /// Adds a case.
    pub fn case(mut self, case: HtmlCase) -> Self {
        self.cases.push(case);
        self
    }

    /// The whole page.
    pub fn to_html(&self) -> String {
        let mut data = String::from("{\"cases\":[");
        for (k, case) in self.cases.iter().enumerate() {
            if k > 0 {
                data.push(',');
            }
            let _ = write!(
                data,
                "{{\"name\":{},\"range_mm\":{},\"meshes\":[",
                json_string(&case.name),
                case.range_mm.map_or("null".to_string(), |r| format!("{r}"))
            );
            for (j, m) in case.meshes.iter().enumerate() {
                if j > 0 {
                    data.push(',');
                }
                let [r, g, b] = m.role.colour();
                let _ = write!(
                    data,
                    "{{\"name\":{},\"role\":\"{}\",\"colour\":[{r},{g},{b}],\"vertices\":{},\"triangles\":{},\
                     \"positions\":\"{}\",\"indices\":\"{}\",\"deviation\":{}}}",
                    json_string(&m.name),
                    m.role.name(),
                    m.vertices,
                    m.triangles,
                    m.positions_b64,
                    m.indices_b64,
                    m.deviation_b64.as_ref().map_or("null".to_string(), |d| format!("\"{d}\""))
                );
            }
            data.push_str("]}");
        }
        data.push_str("]}");
        let mut s = String::with_capacity(data.len() + THREE_JS.len() + 64 * 1024);
        let title = escape(&self.title);
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"msd {}\">\n<title>{title}</title>\n<style>\n{STYLE_CSS}</style>\n</head>\n<body>\n\
             <header><h1>{title}</h1>",
            env!("CARGO_PKG_VERSION")
        );
        if !self.intro.is_empty() {
            let _ = write!(s, "<p>{}</p>", escape(&self.intro));
        }
        s.push_str("</header>\n");
        if self.cases.iter().any(|c| !c.meshes.is_empty()) {
            s.push_str(
                "<section id=\"viewer-section\"><h2>3D view</h2>\n<div id=\"viewer-controls\">\
                 <label>case <select id=\"case-select\"></select></label> <span id=\"mesh-toggles\"></span> \
                 <label><input type=\"checkbox\" id=\"deviation-toggle\" checked> colour by deviation</label> \
                 <button id=\"reset-view\" type=\"button\">reset view</button></div>\n\
                 <div id=\"viewer-wrap\"><div id=\"viewer\"></div><div id=\"colour-scale\" hidden>\
                 <div class=\"scale-title\">signed distance to the reference (mm)</div>\
                 <div class=\"scale-bar\"></div><div class=\"scale-labels\"><span id=\"scale-min\"></span>\
                 <span>0</span><span id=\"scale-max\"></span></div>\
                 <div class=\"scale-note\">blue: inside the reference (too little bone) · red: outside (too much)</div></div>\
                 <div id=\"orientation\"></div></div>\n\
                 <p class=\"hint\">Drag to rotate, scroll to zoom, right-drag to pan. Meshes are reduced for \
                 display (vertex clustering); the metrics use the full meshes.</p>\n\
                 <p id=\"msd-status\" data-status=\"loading\">loading the 3D view…</p></section>\n",
            );
        }
        for (caption, table) in &self.tables {
            let _ = write!(s, "<section><h2>Study table: {}</h2>\n{table}</section>\n", escape(caption));
        }
        for case in &self.cases {
            if case.images.is_empty() {
                continue;
            }
            let _ = writeln!(s, "<section class=\"case\"><h2>{}</h2>", escape(&case.name));
            for (caption, png) in &case.images {
                let _ = writeln!(
                    s,
                    "<figure><img alt=\"{c}\" src=\"data:image/png;base64,{png}\"><figcaption>{c}</figcaption></figure>",
                    c = escape(caption)
                );
            }
            s.push_str("</section>\n");
        }
        s.push_str("<footer>Made by msd. 3D view: three.js r147 (MIT licence).</footer>\n");
        if self.cases.iter().any(|c| !c.meshes.is_empty()) {
            let _ = writeln!(
                s,
                "<script type=\"application/json\" id=\"msd-data\">{}</script>",
                data.replace("</", "<\\/")
            );
            // The vendored scripts and the viewer are inlined whole; none contains "</script".
            let _ = write!(s, "<script>\n{THREE_JS}\n</script>\n<script>\n{ORBIT_CONTROLS_JS}\n</script>\n");
            let _ = write!(s, "<script>\n{VIEWER_JS}\n</script>\n");
        }
        s.push_str("</body>\n</html>\n");
        s
    }

    /// Writes the page atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::atomic::write_text(path, &self.to_html())
    }
}

fn table_html(report: &Report) -> String {
    let summary = report.summary();
    let names: Vec<&str> = summary.iter().filter(|(_, m)| m.n > 0).map(|(n, _)| *n).collect();
    let region = report.region_summary();
    let region_names: Vec<&str> = region.iter().filter(|(_, m)| m.n > 0).map(|(n, _)| *n).collect();
    let region_label = report.region_name.clone().unwrap_or_else(|| "region".into());
    let mut s = String::from("<table class=\"study\"><thead><tr><th>case</th>");
    for n in &names {
        let _ = write!(s, "<th>{}</th>", escape(n));
    }
    for n in &region_names {
        let _ = write!(s, "<th>{} ({})</th>", escape(n), escape(&region_label));
    }
    s.push_str("</tr></thead><tbody>\n");
    let cell = |v: Option<f64>| v.filter(|v| v.is_finite()).map_or("–".to_string(), |v| format!("{v:.3}"));
    for case in &report.cases {
        let _ = write!(s, "<tr><td>{}</td>", escape(&case.case));
        let values: HashMap<&str, Option<f64>> = case.metrics.values().collect();
        for n in &names {
            let _ = write!(s, "<td>{}</td>", cell(values.get(n).copied().flatten()));
        }
        let rvalues: HashMap<&str, Option<f64>> =
            case.region.as_ref().map(|r| r.values().collect()).unwrap_or_default();
        for n in &region_names {
            let _ = write!(s, "<td>{}</td>", cell(rvalues.get(n).copied().flatten()));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody><tfoot><tr><th>mean ± sd</th>");
    let pm = |m: &msd_metrics::MetricSummary| format!("{:.3} ± {:.3}", m.mean, m.sd);
    for (_, m) in summary.iter().filter(|(_, m)| m.n > 0) {
        let _ = write!(s, "<td>{}</td>", pm(m));
    }
    for (_, m) in region.iter().filter(|(_, m)| m.n > 0) {
        let _ = write!(s, "<td>{}</td>", pm(m));
    }
    s.push_str("</tr></tfoot></table>\n");
    s
}

/// HTML-escapes text for element content and attribute values.
fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A mesh reduced by [`cluster_vertices`].
#[derive(Debug, Clone, PartialEq)]
pub struct Clustered {
    /// One vertex per occupied cell: the mean of the vertices that fell in it (LPS mm).
    pub vertices: Vec<[f32; 3]>,
    /// The triangles whose three corners fell in three different cells, deduplicated.
    pub triangles: Vec<[u32; 3]>,
    /// The mean deviation of each cell's vertices, when deviations were given.
    pub deviation: Option<Vec<f32>>,
}

/// Reduces `mesh` to at most `max_vertices` vertices by vertex clustering: vertices are pooled in
/// cubic cells (the cell grows by 25 % until the budget holds), each cell becomes its mean
/// vertex, and triangles that collapse are dropped. Coarse but fast, order-independent and
/// faithful in position to about one cell: for display, not for measurement.
pub fn cluster_vertices(mesh: &Mesh, deviation: Option<&[f32]>, max_vertices: usize) -> Clustered {
    let verts = mesh.vertices();
    let Some(bounds) = mesh.bounds() else {
        return Clustered {
            vertices: Vec::new(),
            triangles: Vec::new(),
            deviation: deviation.map(|_| Vec::new()),
        };
    };
    if verts.len() <= max_vertices {
        return Clustered {
            vertices: verts.to_vec(),
            triangles: mesh.triangles().to_vec(),
            deviation: deviation.map(<[f32]>::to_vec),
        };
    }
    let extent: Vec<f64> = (0..3).map(|k| f64::from(bounds.max[k] - bounds.min[k]).max(1e-6)).collect();
    // A surface of area A with cells of size c has about A / c² occupied cells.
    let mut cell =
        (mesh.area() / max_vertices as f64).sqrt().max(extent.iter().copied().fold(0.0, f64::max) / 4096.0);
    loop {
        let key = |p: [f32; 3]| -> (i64, i64, i64) {
            let q = |k: usize| (f64::from(p[k] - bounds.min[k]) / cell).floor() as i64;
            (q(0), q(1), q(2))
        };
        let mut index: HashMap<(i64, i64, i64), u32> = HashMap::new();
        let mut of_vertex = Vec::with_capacity(verts.len());
        for &p in verts {
            let next = index.len() as u32;
            of_vertex.push(*index.entry(key(p)).or_insert(next));
        }
        if index.len() > max_vertices {
            cell *= 1.25;
            continue;
        }
        let n = index.len();
        let mut sum = vec![[0.0f64; 3]; n];
        let mut dev = vec![0.0f64; n];
        let mut count = vec![0u32; n];
        for (v, &c) in of_vertex.iter().enumerate() {
            let c = c as usize;
            for k in 0..3 {
                sum[c][k] += f64::from(verts[v][k]);
            }
            if let Some(d) = deviation {
                dev[c] += f64::from(d[v]);
            }
            count[c] += 1;
        }
        let vertices =
            sum.iter().zip(&count).map(|(s, &k)| s.map(|x| (x / f64::from(k.max(1))) as f32)).collect();
        let mut seen = std::collections::HashSet::new();
        let mut triangles = Vec::new();
        for t in mesh.triangles() {
            let c = t.map(|i| of_vertex[i as usize]);
            if c[0] == c[1] || c[1] == c[2] || c[0] == c[2] {
                continue;
            }
            // Same triangle, same winding, up to rotation: keep one.
            let r = (0..3).min_by_key(|&k| c[k]).unwrap_or(0);
            let canonical = [c[r], c[(r + 1) % 3], c[(r + 2) % 3]];
            if seen.insert(canonical) {
                triangles.push(c);
            }
        }
        return Clustered {
            vertices,
            triangles,
            deviation: deviation
                .map(|_| dev.iter().zip(&count).map(|(d, &k)| (d / f64::from(k.max(1))) as f32).collect()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn escaping_keeps_markup_out() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let html = HtmlReport::new("</title><script>").intro("a < b").to_html();
        assert!(!html.contains("</title><script>"));
        assert!(html.contains("a &lt; b"));
    }

    fn sphere(n: usize) -> Mesh {
        // A UV sphere of radius 50 mm.
        let mut v = Vec::new();
        let mut t = Vec::new();
        for i in 0..=n {
            let th = std::f32::consts::PI * i as f32 / n as f32;
            for j in 0..2 * n {
                let ph = std::f32::consts::PI * j as f32 / n as f32;
                v.push([50.0 * th.sin() * ph.cos(), 50.0 * th.sin() * ph.sin(), 50.0 * th.cos()]);
            }
        }
        let id = |i: usize, j: usize| (i * 2 * n + j % (2 * n)) as u32;
        for i in 0..n {
            for j in 0..2 * n {
                t.push([id(i, j), id(i + 1, j), id(i + 1, j + 1)]);
                t.push([id(i, j), id(i + 1, j + 1), id(i, j + 1)]);
            }
        }
        Mesh::new(v, t).unwrap()
    }

    #[test]
    fn clustering_meets_the_budget_and_keeps_the_shape() {
        let mesh = sphere(120);
        let dev: Vec<f32> = mesh.vertices().iter().map(|p| p[2] / 50.0).collect();
        let c = cluster_vertices(&mesh, Some(&dev), 2000);
        assert!(c.vertices.len() <= 2000 && c.vertices.len() > 500, "{}", c.vertices.len());
        assert!(c.triangles.len() > c.vertices.len());
        for p in &c.vertices {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            assert!((r - 50.0).abs() < 3.0, "radius {r}");
        }
        let d = c.deviation.unwrap();
        for (p, d) in c.vertices.iter().zip(&d) {
            assert!((p[2] / 50.0 - d).abs() < 0.1);
        }
        assert!(c.triangles.iter().flatten().all(|&i| (i as usize) < c.vertices.len()));
        let small = cluster_vertices(&mesh, None, 1_000_000);
        assert_eq!(small.vertices.len(), mesh.vertices().len());
    }

    #[test]
    fn a_report_embeds_cases_meshes_and_the_viewer() {
        let mesh = sphere(40);
        let dev = vec![0.4f32; mesh.vertices().len()];
        let case = HtmlCase::new("c<1>")
            .with_max_vertices(500)
            .mesh("truth", MeshRole::Reference, &mesh, None)
            .unwrap()
            .mesh("pred", MeshRole::Prediction, &mesh, Some(&dev))
            .unwrap()
            .image("slice", &RgbImage::filled(4, 4, [9, 9, 9]))
            .unwrap();
        assert_eq!(case.range_mm(), Some(0.5));
        assert!(HtmlCase::new("x").mesh("m", MeshRole::Implant, &mesh, Some(&[1.0])).is_err());
        let html = HtmlReport::new("study").case(case).to_html();
        assert!(html.contains("c&lt;1&gt;"));
        assert!(html.contains("\"name\":\"c<1>\""));
        assert!(html.contains("data:image/png;base64,"));
        assert!(html.contains("id=\"msd-data\""));
        assert!(html.contains("OrbitControls"));
        assert_eq!(html.matches("<script").count(), html.matches("</script>").count());
        // The embedded JSON parses.
        let start = html.find("id=\"msd-data\">").unwrap() + "id=\"msd-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(data["cases"][0]["meshes"][1]["role"], "prediction");
        assert!(data["cases"][0]["meshes"][0]["vertices"].as_u64().unwrap() <= 500);
    }

    #[test]
    fn a_case_from_two_meshes_has_a_figure_and_a_coloured_prediction() {
        let reference = sphere(30);
        let bigger: Vec<[f32; 3]> = reference.vertices().iter().map(|p| p.map(|c| c * 1.02)).collect();
        let pred = Mesh::new(bigger, reference.triangles().to_vec()).unwrap();
        let case = HtmlCase::from_shapes("c1", &pred, &reference).unwrap();
        // The prediction lies about 1 mm outside the reference everywhere: the range covers it.
        assert!(matches!(case.range_mm(), Some(r) if (1.0..=2.0).contains(&r)), "{:?}", case.range_mm());
        let html = HtmlReport::new("study").case(case).to_html();
        // The figure and the histogram of the deviations.
        assert_eq!(html.matches("data:image/png;base64,").count(), 2);
        assert!(html.contains("surface lies how far from the reference"));
        assert!(html.contains("\"role\":\"reference\"") && html.contains("\"role\":\"prediction\""));
        // An empty prediction is drawn without deviation.
        let empty = Mesh::new(Vec::new(), Vec::new()).unwrap();
        assert_eq!(HtmlCase::from_shapes("c2", &empty, &reference).unwrap().range_mm(), None);
    }
}
