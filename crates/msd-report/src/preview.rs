//! PNG previews: axial, coronal and sagittal CT slices with label contours drawn over them, and
//! what a reader needs to read them: the plane and its position (LPS mm), orientation letters on
//! every side, a millimetre scale bar, the grey-level window and a legend naming each contour.
//!
//! Slices are shown the way radiologists read them: axial seen from the feet (patient left on the
//! image right, anterior up), coronal seen from the front and sagittal seen from the patient's left
//! (superior up). Anisotropic voxels are stretched to square millimetres, so the head is not
//! squashed by thick slices. Each overlay is drawn as a one-pixel contour in its own colour. The
//! orientation letters follow the scan's direction matrix (R/L, A/P, S/I of LPS), so a scan stored
//! upside down or rotated shows where the patient's sides really are.
//!
//! ```
//! use msd_phantom::{PhantomConfig, generate};
//! use msd_report::preview::{Overlay, Plane, PreviewOptions, render_slice};
//!
//! let head = generate(&PhantomConfig::quick(), 1)?;
//! let overlays = [Overlay::new(&head.skull, [0, 255, 0]).named("skull")];
//! let image = render_slice(&head.ct, Plane::Axial, None, &overlays, &PreviewOptions::default())?;
//! assert_eq!(image.pixels.len(), 3 * image.width * image.height);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::path::{Path, PathBuf};

use msd_io::{LabelVolume, Volume};

#[doc(no_inline)]
pub use crate::image::RgbImage;
use crate::render::lps_letter;
use crate::{Error, Result};

/// One of the three orthogonal slice orientations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Constant z: seen from the feet.
    Axial,
    /// Constant y: seen from the front.
    Coronal,
    /// Constant x: seen from the patient's left.
    Sagittal,
}

impl Plane {
    /// All three planes, in the usual order.
    pub const ALL: [Plane; 3] = [Plane::Axial, Plane::Coronal, Plane::Sagittal];

    /// Lower-case name, used in file names.
    pub fn name(self) -> &'static str {
        match self {
            Plane::Axial => "axial",
            Plane::Coronal => "coronal",
            Plane::Sagittal => "sagittal",
        }
    }
}

/// A label volume drawn as a contour in one colour, named in the legend. Any non-zero voxel counts
/// as inside.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// The labels; must share the CT's grid.
    pub labels: &'a LabelVolume,
    /// Contour colour, RGB.
    pub colour: [u8; 3],
    /// The legend's name for the contour.
    pub name: &'a str,
}

impl<'a> Overlay<'a> {
    /// An overlay of `labels` in `colour` (RGB). Its legend name is "segmentation" for
    /// [`SEGMENTATION_COLOUR`], "reference" for [`REFERENCE_COLOUR`] and "labels" otherwise; set
    /// another with [`Overlay::named`].
    pub fn new(labels: &'a LabelVolume, colour: [u8; 3]) -> Self {
        let name = match colour {
            SEGMENTATION_COLOUR => "segmentation",
            REFERENCE_COLOUR => "reference",
            _ => "labels",
        };
        Overlay { labels, colour, name }
    }

    /// The same overlay named `name` in the legend.
    pub fn named(self, name: &'a str) -> Self {
        Overlay { name, ..self }
    }
}

/// Contour colour of a segmentation in the CLI's previews (red).
pub const SEGMENTATION_COLOUR: [u8; 3] = [255, 48, 48];
/// Contour colour of a reference in the CLI's previews (green).
pub const REFERENCE_COLOUR: [u8; 3] = [48, 230, 48];

/// Whether a preview carries its reading aids (title, orientation letters, scale bar, legend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Annotations {
    /// The slice framed by a title line (plane, position in LPS mm, window), orientation letters
    /// on all four sides, a scale bar in millimetres and a legend of the overlays.
    #[default]
    Full,
    /// The bare slice: one image pixel per display pixel, nothing drawn around it.
    Off,
}

/// How slices are rendered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PreviewOptions {
    /// Grey-level window `(low, high)` in HU: low is black, high is white.
    pub window_hu: (f32, f32),
    /// Display pixel size in mm; `None` uses the smallest voxel spacing.
    pub pixel_mm: Option<f64>,
    /// Reading aids around the slice.
    pub annotations: Annotations,
}

impl Default for PreviewOptions {
    /// A bone window (−700 to 1300 HU) at the finest voxel spacing, fully annotated.
    fn default() -> Self {
        PreviewOptions { window_hu: (-700.0, 1300.0), pixel_mm: None, annotations: Annotations::Full }
    }
}

impl PreviewOptions {
    /// The same options with `annotations`.
    pub fn annotations(mut self, annotations: Annotations) -> Self {
        self.annotations = annotations;
        self
    }

    /// The same options with a display pixel of `pixel_mm` millimetres.
    pub fn pixel_mm(mut self, pixel_mm: f64) -> Self {
        self.pixel_mm = Some(pixel_mm);
        self
    }
}

/// Voxel index `(x, y, z)` of the centre of the non-zero voxels of `labels`, or of the grid when
/// there are none: a good default slice position for previews.
pub fn label_centre(labels: &LabelVolume) -> [usize; 3] {
    let [nz, ny, nx] = labels.shape();
    let mut sum = [0.0f64; 3];
    let mut n = 0usize;
    for ((z, y, x), &v) in labels.data().indexed_iter() {
        if v != 0 {
            sum[0] += x as f64;
            sum[1] += y as f64;
            sum[2] += z as f64;
            n += 1;
        }
    }
    if n == 0 {
        return [nx / 2, ny / 2, nz / 2];
    }
    let c = |s: f64, len: usize| ((s / n as f64).round() as usize).min(len - 1);
    [c(sum[0], nx), c(sum[1], ny), c(sum[2], nz)]
}

/// Renders one slice of `ct` through voxel index `at` (`(x, y, z)`; `None`: the grid centre) with
/// each overlay's contour drawn over it, framed by the reading aids that `options.annotations`
/// asks for. Overlays must share the CT's grid.
pub fn render_slice(
    ct: &Volume<f32>,
    plane: Plane,
    at: Option<[usize; 3]>,
    overlays: &[Overlay<'_>],
    options: &PreviewOptions,
) -> Result<RgbImage> {
    for o in overlays {
        ct.check_same_grid(o.labels, 1e-3)?;
    }
    let (lo, hi) = options.window_hu;
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Err(Error::InvalidConfig { what: format!("preview window ({lo}, {hi}) HU must rise") });
    }
    let [nz, ny, nx] = ct.shape();
    let at = at.unwrap_or([nx / 2, ny / 2, nz / 2]);
    let at = [at[0].min(nx - 1), at[1].min(ny - 1), at[2].min(nz - 1)];
    let spacing = ct.geometry().spacing();
    let pixel = options.pixel_mm.unwrap_or_else(|| spacing.iter().copied().fold(f64::INFINITY, f64::min));
    if !(pixel.is_finite() && pixel > 0.0) {
        return Err(Error::InvalidConfig { what: format!("preview pixel size {pixel} mm") });
    }
    // (column axis, row axis, whether rows run against the axis) in (x, y, z) numbering.
    let (col_axis, row_axis, flip_rows) = match plane {
        Plane::Axial => (0, 1, false),
        Plane::Coronal => (0, 2, true),
        Plane::Sagittal => (1, 2, true),
    };
    let lens = [nx, ny, nz];
    let (ncol, nrow) = (lens[col_axis], lens[row_axis]);
    let width = ((ncol as f64 * spacing[col_axis] / pixel).round() as usize).clamp(1, 4096);
    let height = ((nrow as f64 * spacing[row_axis] / pixel).round() as usize).clamp(1, 4096);
    // Display pixel → voxel along each in-plane axis (nearest neighbour).
    let col_of: Vec<usize> = (0..width).map(|i| (i * ncol / width).min(ncol - 1)).collect();
    let row_of: Vec<usize> = (0..height)
        .map(|j| {
            let r = (j * nrow / height).min(nrow - 1);
            if flip_rows { nrow - 1 - r } else { r }
        })
        .collect();
    let voxel = |c: usize, r: usize| -> [usize; 3] {
        let mut idx = at;
        idx[col_axis] = c;
        idx[row_axis] = r;
        [idx[2], idx[1], idx[0]]
    };
    let mut image = RgbImage::new(width, height);
    let scale = 255.0 / (hi - lo);
    for (j, &r) in row_of.iter().enumerate() {
        for (i, &c) in col_of.iter().enumerate() {
            let v = ct.data()[voxel(c, r)];
            let g = ((v - lo) * scale).clamp(0.0, 255.0) as u8;
            image.put(i, j, [g, g, g]);
        }
    }
    for o in overlays {
        let inside = |i: usize, j: usize| o.labels.data()[voxel(col_of[i], row_of[j])] != 0;
        for j in 0..height {
            for i in 0..width {
                if !inside(i, j) {
                    continue;
                }
                // A contour pixel is inside with a 4-neighbour outside (or at the image edge).
                let edge = i == 0
                    || j == 0
                    || i + 1 == width
                    || j + 1 == height
                    || !inside(i - 1, j)
                    || !inside(i + 1, j)
                    || !inside(i, j - 1)
                    || !inside(i, j + 1);
                if edge {
                    image.put(i, j, o.colour);
                }
            }
        }
    }
    Ok(match options.annotations {
        Annotations::Off => image,
        Annotations::Full => {
            let frame =
                SliceFrame { plane, col_axis, row_axis, flip_rows, at, pixel_mm: pixel, window: (lo, hi) };
            frame.annotate(&image, ct, overlays)
        }
    })
}

/// Where a rendered slice lies and how its pixels map to the patient: what the annotations say.
struct SliceFrame {
    plane: Plane,
    col_axis: usize,
    row_axis: usize,
    flip_rows: bool,
    at: [usize; 3],
    pixel_mm: f64,
    window: (f32, f32),
}

/// Background of the frame around an annotated slice.
const FRAME_BG: [u8; 3] = [20, 20, 24];
/// Colour of the frame's text and scale bar.
const FRAME_FG: [u8; 3] = [235, 235, 235];

/// A round length (1, 2 or 5 × 10ⁿ mm) no longer than `max_mm`.
fn round_length_mm(max_mm: f64) -> f64 {
    let exp = 10f64.powf(max_mm.max(1e-6).log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|m| m * exp).find(|&l| l <= max_mm).unwrap_or(exp)
}

fn format_mm(mm: f64) -> String {
    if mm >= 1.0 { format!("{mm:.0} mm") } else { format!("{mm} mm") }
}

impl SliceFrame {
    /// The slice inside a frame: a title line above, orientation letters on the four sides, and
    /// below, a scale bar and the legend.
    fn annotate(&self, slice: &RgbImage, ct: &Volume<f32>, overlays: &[Overlay<'_>]) -> RgbImage {
        let geometry = ct.geometry();
        let dir = geometry.direction();
        let column = |axis: usize| [dir[0][axis], dir[1][axis], dir[2][axis]];
        let right = column(self.col_axis);
        let down = column(self.row_axis).map(|v| if self.flip_rows { -v } else { v });
        let [right, left] = [right, right.map(|v| -v)].map(lps_letter);
        let [bottom, top] = [down, down.map(|v| -v)].map(lps_letter);
        let normal_axis = 3 - self.col_axis - self.row_axis;
        let world = geometry.index_to_world(self.at.map(|i| i as f64));
        let normal = column(normal_axis);
        let k = (0..3).max_by(|&a, &b| normal[a].abs().total_cmp(&normal[b].abs())).unwrap_or(2);
        let title = format!(
            "{} {} = {:.1} mm  window {:.0}..{:.0} HU",
            self.plane.name(),
            ["x", "y", "z"][k],
            world[k],
            self.window.0,
            self.window.1
        );
        let scale = if slice.width >= 360 { 2 } else { 1 };
        let th = RgbImage::text_height(scale);
        let m = th + 6 * scale;
        // Legend entries: a swatch and the name; then the scale bar.
        let swatch = th;
        let legend: Vec<(String, [u8; 3])> =
            overlays.iter().map(|o| (o.name.to_string(), o.colour)).collect();
        let legend_w: usize = legend
            .iter()
            .map(|(name, _)| swatch + 3 * scale + RgbImage::text_width(name, scale) + 8 * scale)
            .sum();
        let bar_mm = round_length_mm(slice.width as f64 * self.pixel_mm / 3.0);
        let bar_px = ((bar_mm / self.pixel_mm).round() as usize).max(1);
        let bar_label = format_mm(bar_mm);
        let footer_w = bar_px.max(RgbImage::text_width(&bar_label, scale)) + 8 * scale + legend_w;
        let width =
            (slice.width + 2 * m).max(RgbImage::text_width(&title, scale) + 2 * m).max(footer_w + 2 * m);
        let x0 = (width - slice.width) / 2;
        let y0 = th + 4 * scale + m;
        let footer_h = 2 * th + 8 * scale;
        let height = y0 + slice.height + m + footer_h;
        let mut out = RgbImage::filled(width, height, FRAME_BG);
        out.draw_text(m, 2 * scale, &title, FRAME_FG, scale);
        out.blit(slice, x0, y0);
        let cw = RgbImage::text_width("M", scale);
        let (cx, cy) = (x0 + slice.width / 2, y0 + slice.height / 2);
        let letter = |out: &mut RgbImage, x: usize, y: usize, c: char| {
            out.draw_text(x, y, &c.to_string(), FRAME_FG, scale);
        };
        letter(&mut out, cx.saturating_sub(cw / 2), y0 - m + 3 * scale, top);
        letter(&mut out, cx.saturating_sub(cw / 2), y0 + slice.height + 3 * scale, bottom);
        letter(&mut out, x0 - m + 3 * scale, cy.saturating_sub(th / 2), left);
        letter(&mut out, x0 + slice.width + 3 * scale, cy.saturating_sub(th / 2), right);
        // Scale bar with end ticks, its length above it.
        let fy = y0 + slice.height + m;
        let bx = m;
        out.draw_text(bx, fy, &bar_label, FRAME_FG, scale);
        let by = fy + th + 4 * scale;
        out.fill_rect(bx, by, bx + bar_px, by + scale.max(2), FRAME_FG);
        out.fill_rect(bx, by - 2 * scale, bx + scale, by + scale.max(2), FRAME_FG);
        out.fill_rect(bx + bar_px - scale, by - 2 * scale, bx + bar_px, by + scale.max(2), FRAME_FG);
        let mut lx = bx + bar_px.max(RgbImage::text_width(&bar_label, scale)) + 8 * scale;
        for (name, colour) in &legend {
            out.fill_rect(lx, fy, lx + swatch, fy + swatch, *colour);
            lx += swatch + 3 * scale;
            lx += out.draw_text(lx, fy, name, FRAME_FG, scale) + 8 * scale;
        }
        out
    }
}

/// Writes `<stem>_axial.png`, `<stem>_coronal.png` and `<stem>_sagittal.png` into `dir` (created if
/// missing), each through voxel `at` (`None`: the centre of the first overlay's labels), and returns
/// their paths.
pub fn write_previews(
    dir: &Path,
    stem: &str,
    ct: &Volume<f32>,
    at: Option<[usize; 3]>,
    overlays: &[Overlay<'_>],
    options: &PreviewOptions,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let at = at.or_else(|| overlays.first().map(|o| label_centre(o.labels)));
    let mut paths = Vec::with_capacity(3);
    for plane in Plane::ALL {
        let image = render_slice(ct, plane, at, overlays, options)?;
        let path = dir.join(format!("{stem}_{}.png", plane.name()));
        image.write_png(&path)?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use msd_io::Geometry;
    use ndarray::Array3;

    fn bare() -> PreviewOptions {
        PreviewOptions::default().annotations(Annotations::Off)
    }

    fn cube() -> (Volume<f32>, LabelVolume) {
        let g = Geometry::new([1.0, 1.0, 2.0], [0.0; 3], Geometry::IDENTITY).unwrap();
        let mut ct = Array3::<f32>::from_elem((10, 20, 20), -1000.0);
        let mut lab = Array3::<u8>::zeros((10, 20, 20));
        for z in 3..7 {
            for y in 5..15 {
                for x in 5..15 {
                    ct[[z, y, x]] = 1300.0;
                    lab[[z, y, x]] = 1;
                }
            }
        }
        (Volume::new(ct, g).unwrap(), Volume::new(lab, g).unwrap())
    }

    #[test]
    fn axial_slice_shows_window_and_contour() {
        let (ct, lab) = cube();
        let img =
            render_slice(&ct, Plane::Axial, Some([10, 10, 5]), &[Overlay::new(&lab, [255, 0, 0])], &bare())
                .unwrap();
        assert_eq!((img.width, img.height), (20, 20));
        assert_eq!(img.get(0, 0), [0, 0, 0]);
        assert_eq!(img.get(10, 10), [255, 255, 255]);
        assert_eq!(img.get(5, 10), [255, 0, 0]);
        assert_eq!(img.get(14, 10), [255, 0, 0]);
        assert_eq!(img.get(4, 10), [0, 0, 0]);
    }

    #[test]
    fn coronal_slice_stretches_thick_slices_and_puts_superior_up() {
        let (mut ct, lab) = cube();
        ct.data_mut()[[9, 10, 10]] = 1300.0; // the top slice
        let img = render_slice(&ct, Plane::Coronal, Some([10, 10, 5]), &[], &bare()).unwrap();
        assert_eq!((img.width, img.height), (20, 20));
        assert_eq!(img.get(10, 0), [255, 255, 255]);
        assert_eq!(img.get(10, 19), [0, 0, 0]);
        let _ = lab;
    }

    #[test]
    fn overlay_on_another_grid_is_an_error() {
        let (ct, _) = cube();
        let other = Volume::new(Array3::<u8>::zeros((10, 20, 21)), *ct.geometry()).unwrap();
        assert!(
            render_slice(
                &ct,
                Plane::Axial,
                None,
                &[Overlay::new(&other, [1, 2, 3])],
                &PreviewOptions::default()
            )
            .is_err()
        );
    }

    #[test]
    fn previews_are_written_as_decodable_png() {
        let (ct, lab) = cube();
        let dir = tempfile::tempdir().unwrap();
        let paths = write_previews(
            dir.path(),
            "case",
            &ct,
            None,
            &[Overlay::new(&lab, [0, 255, 0])],
            &PreviewOptions::default(),
        )
        .unwrap();
        assert_eq!(paths.len(), 3);
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&paths[0]).unwrap()));
        let reader = decoder.read_info().unwrap();
        let (w, h) = (reader.info().width as usize, reader.info().height as usize);
        assert!(w > 20 && h > 20, "the frame surrounds the 20 × 20 slice: {w} × {h}");
    }

    /// The annotated preview: the slice framed, the legend's swatches in the overlays' colours,
    /// the orientation letters and the scale bar drawn in the frame, not on the slice.
    #[test]
    fn annotations_frame_the_slice_with_legend_letters_and_scale() {
        let (ct, lab) = cube();
        let overlays = [Overlay::new(&lab, [255, 0, 0]).named("truth"), Overlay::new(&lab, [0, 0, 255])];
        let options = PreviewOptions::default().pixel_mm(0.25);
        let bare_img =
            render_slice(&ct, Plane::Axial, Some([10, 10, 5]), &overlays, &bare().pixel_mm(0.25)).unwrap();
        let img = render_slice(&ct, Plane::Axial, Some([10, 10, 5]), &overlays, &options).unwrap();
        assert_eq!((bare_img.width, bare_img.height), (80, 80));
        assert!(img.width > 80 && img.height > 80);
        // The bare slice appears unchanged somewhere in the frame: find its top-left corner.
        let found = (0..img.height - 80).any(|y0| {
            (0..img.width - 80)
                .any(|x0| (0..80).all(|y| (0..80).all(|x| img.get(x0 + x, y0 + y) == bare_img.get(x, y))))
        });
        assert!(found, "the slice is blitted whole");
        // Legend swatches: solid squares in each overlay colour, below the slice.
        let solid = |c: [u8; 3]| img.count_in(0, img.height - 30, img.width, img.height, |p| p == c);
        assert!(solid([255, 0, 0]) >= 36, "red swatch: {}", solid([255, 0, 0]));
        assert!(solid([0, 0, 255]) >= 36, "blue swatch: {}", solid([0, 0, 255]));
        // Text and the scale bar in the frame's foreground colour.
        assert!(img.count_in(0, 0, img.width, img.height, |p| p == FRAME_FG) > 200);
        assert_eq!(round_length_mm(6.7), 5.0);
        assert_eq!(round_length_mm(34.0), 20.0);
        assert_eq!(round_length_mm(0.3), 0.2);
    }

    #[test]
    fn orientation_letters_follow_the_direction_matrix() {
        assert_eq!(lps_letter([1.0, 0.0, 0.0]), 'L');
        assert_eq!(lps_letter([-0.9, 0.1, 0.0]), 'R');
        assert_eq!(lps_letter([0.0, -1.0, 0.0]), 'A');
        assert_eq!(lps_letter([0.0, 0.2, -0.9]), 'I');
    }
}
