//! PNG previews: axial, coronal and sagittal CT slices with label contours drawn over them.
//!
//! Slices are shown the way radiologists read them: axial seen from the feet (patient left on the
//! image right, anterior up), coronal seen from the front and sagittal seen from the patient's left
//! (superior up). Anisotropic voxels are stretched to square millimetres, so the head is not
//! squashed by thick slices. Each overlay is drawn as a one-pixel contour in its own colour.
//!
//! ```
//! use msd::phantom::{PhantomConfig, generate};
//! use msd::preview::{Overlay, Plane, PreviewOptions, render_slice};
//!
//! let head = generate(&PhantomConfig::quick(), 1)?;
//! let overlays = [Overlay::new(&head.skull, [0, 255, 0])];
//! let image = render_slice(&head.ct, Plane::Axial, None, &overlays, &PreviewOptions::default())?;
//! assert_eq!(image.pixels.len(), 3 * image.width * image.height);
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::path::{Path, PathBuf};

use msd_io::{LabelVolume, Volume};

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

/// A label volume drawn as a contour in one colour. Any non-zero voxel counts as inside.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<'a> {
    /// The labels; must share the CT's grid.
    pub labels: &'a LabelVolume,
    /// Contour colour, RGB.
    pub colour: [u8; 3],
}

impl<'a> Overlay<'a> {
    /// An overlay of `labels` in `colour` (RGB).
    pub fn new(labels: &'a LabelVolume, colour: [u8; 3]) -> Self {
        Overlay { labels, colour }
    }
}

/// Contour colour of a segmentation in the CLI's previews (red).
pub const SEGMENTATION_COLOUR: [u8; 3] = [255, 48, 48];
/// Contour colour of a reference in the CLI's previews (green).
pub const REFERENCE_COLOUR: [u8; 3] = [48, 230, 48];

/// How slices are rendered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PreviewOptions {
    /// Grey-level window `(low, high)` in HU: low is black, high is white.
    pub window_hu: (f32, f32),
    /// Display pixel size in mm; `None` uses the smallest voxel spacing.
    pub pixel_mm: Option<f64>,
}

impl Default for PreviewOptions {
    /// A bone window (−700 to 1300 HU) at the finest voxel spacing.
    fn default() -> Self {
        PreviewOptions { window_hu: (-700.0, 1300.0), pixel_mm: None }
    }
}

/// An 8-bit RGB image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3 · width · height` bytes, RGB, row-major.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        RgbImage { width, height, pixels: vec![0; 3 * width * height] }
    }

    /// Sets one pixel; coordinates outside the image are ignored.
    pub fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// The colour of one pixel.
    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Places images side by side (top-aligned) on a black background.
    pub fn side_by_side(images: &[RgbImage]) -> RgbImage {
        let width = images.iter().map(|i| i.width).sum();
        let height = images.iter().map(|i| i.height).max().unwrap_or(0);
        let mut out = RgbImage::new(width, height);
        let mut x0 = 0;
        for img in images {
            for y in 0..img.height {
                let src = &img.pixels[3 * y * img.width..3 * (y + 1) * img.width];
                let dst = 3 * (y * width + x0);
                out.pixels[dst..dst + src.len()].copy_from_slice(src);
            }
            x0 += img.width;
        }
        out
    }

    /// Writes the image as PNG, atomically (temporary file in the same folder, then rename).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let (width, height) = (
            u32::try_from(self.width).map_err(|_| too_big(path))?,
            u32::try_from(self.height).map_err(|_| too_big(path))?,
        );
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let png_err = |source| Error::Png { path: path.to_path_buf(), source: Box::new(source) };
            let mut writer = encoder.write_header().map_err(png_err)?;
            writer.write_image_data(&self.pixels).map_err(png_err)?;
            writer.finish().map_err(png_err)?;
        }
        crate::atomic::write(path, &bytes)?;
        Ok(())
    }
}

fn too_big(path: &Path) -> Error {
    Error::InvalidConfig { what: format!("image for {} is too large for PNG", path.display()) }
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
/// each overlay's contour drawn over it. Overlays must share the CT's grid.
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
    Ok(image)
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
        let img = render_slice(
            &ct,
            Plane::Axial,
            Some([10, 10, 5]),
            &[Overlay::new(&lab, [255, 0, 0])],
            &PreviewOptions::default(),
        )
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
        let img =
            render_slice(&ct, Plane::Coronal, Some([10, 10, 5]), &[], &PreviewOptions::default()).unwrap();
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
        assert_eq!((reader.info().width, reader.info().height), (20, 20));
    }
}
