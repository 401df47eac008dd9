//! The one raster type of msd's pictures, [`RgbImage`], and what every picture draws with: filled
//! rectangles, lines, text in a built-in 5 × 7 bitmap font, composition side by side or stacked,
//! and PNG encoding through the workspace's atomic writer.
//!
//! Previews ([`crate::preview`]), mesh renders ([`crate::render`]), loss curves
//! ([`crate::loss_curve`]) and the HTML report ([`crate::html`]) all build on it.
//!
//! ```
//! use msd_report::image::RgbImage;
//!
//! let mut image = RgbImage::filled(120, 30, [255, 255, 255]);
//! let width = image.draw_text(4, 4, "±2.0 mm", [0, 0, 0], 2);
//! assert_eq!(width, RgbImage::text_width("±2.0 mm", 2));
//! assert!(image.pixels.chunks(3).any(|p| p == [0, 0, 0]));
//! let png = image.to_png()?;
//! assert_eq!(&png[1..4], b"PNG");
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::path::Path;

use crate::{Error, Result};

mod font;

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

/// # Pixels
impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        RgbImage { width, height, pixels: vec![0; 3 * width * height] }
    }

    /// An image of one colour.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Self {
        RgbImage { width, height, pixels: rgb.repeat(width * height) }
    }

    /// Sets one pixel; coordinates outside the image are ignored.
    pub fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.pixels[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// The colour of one pixel.
    ///
    /// # Panics
    ///
    /// When `(x, y)` lies outside the image.
    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside {}×{}", self.width, self.height);
        let i = 3 * (y * self.width + x);
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// How many pixels in the rectangle `[x0, x1) × [y0, y1)` (clipped to the image) satisfy `f`.
    pub fn count_in(&self, x0: usize, y0: usize, x1: usize, y1: usize, f: impl Fn([u8; 3]) -> bool) -> usize {
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                n += usize::from(f(self.get(x, y)));
            }
        }
        n
    }
}

/// # Drawing
impl RgbImage {
    /// Fills the rectangle `[x0, x1) × [y0, y1)`, clipped to the image.
    pub fn fill_rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]) {
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                self.put(x, y, rgb);
            }
        }
    }

    /// Draws the outline (one pixel wide) of the rectangle `[x0, x1) × [y0, y1)`.
    pub fn stroke_rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, rgb: [u8; 3]) {
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        self.fill_rect(x0, y0, x1, y0 + 1, rgb);
        self.fill_rect(x0, y1 - 1, x1, y1, rgb);
        self.fill_rect(x0, y0, x0 + 1, y1, rgb);
        self.fill_rect(x1 - 1, y0, x1, y1, rgb);
    }

    /// Draws a one-pixel line from `a` to `b` (pixel coordinates `(x, y)`).
    pub fn line(&mut self, a: (usize, usize), b: (usize, usize), rgb: [u8; 3]) {
        let (x0, y0, x1, y1) = (a.0 as i64, a.1 as i64, b.0 as i64, b.1 as i64);
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            let x = x0 + (x1 - x0) * s / steps;
            let y = y0 + (y1 - y0) * s / steps;
            self.put(x as usize, y as usize, rgb);
        }
    }

    /// Width in pixels of `text` drawn at `scale` (each glyph cell is `6·scale` wide, without the
    /// trailing spacing column).
    pub fn text_width(text: &str, scale: usize) -> usize {
        (text.chars().count() * font::CELL_W).saturating_sub(1) * scale
    }

    /// Height in pixels of one line of text at `scale` (the glyphs are `7·scale` tall).
    pub fn text_height(scale: usize) -> usize {
        (font::CELL_H - 1) * scale
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale` × `scale`
    /// block; returns the width drawn. Characters the font lacks show as a hollow box.
    pub fn draw_text(&mut self, x: usize, y: usize, text: &str, rgb: [u8; 3], scale: usize) -> usize {
        let scale = scale.max(1);
        for (k, c) in text.chars().enumerate() {
            let gx = x + k * font::CELL_W * scale;
            for (col, bits) in font::glyph(c).into_iter().enumerate() {
                for row in 0..7 {
                    if bits >> row & 1 == 1 {
                        let px = gx + col * scale;
                        let py = y + row * scale;
                        self.fill_rect(px, py, px + scale, py + scale, rgb);
                    }
                }
            }
        }
        Self::text_width(text, scale)
    }

    /// Draws `text` on a filled box (`pad` pixels around it), so it reads over any picture.
    pub fn draw_label(&mut self, x: usize, y: usize, text: &str, fg: [u8; 3], bg: [u8; 3], scale: usize) {
        let pad = scale.max(1);
        let (w, h) = (Self::text_width(text, scale), Self::text_height(scale));
        self.fill_rect(x, y, x + w + 2 * pad, y + h + 2 * pad, bg);
        self.draw_text(x + pad, y + pad, text, fg, scale);
    }

    /// Copies `other` into this image with its top-left corner at `(x, y)`, clipped.
    pub fn blit(&mut self, other: &RgbImage, x: usize, y: usize) {
        for sy in 0..other.height {
            let ty = y + sy;
            if ty >= self.height || x >= self.width {
                break;
            }
            let n = other.width.min(self.width - x);
            let src = &other.pixels[3 * sy * other.width..3 * (sy * other.width + n)];
            let dst = 3 * (ty * self.width + x);
            self.pixels[dst..dst + 3 * n].copy_from_slice(src);
        }
    }
}

/// # Composition
impl RgbImage {
    /// Places images side by side (top-aligned) on a black background.
    pub fn side_by_side(images: &[RgbImage]) -> RgbImage {
        let width = images.iter().map(|i| i.width).sum();
        let height = images.iter().map(|i| i.height).max().unwrap_or(0);
        let mut out = RgbImage::new(width, height);
        let mut x0 = 0;
        for img in images {
            out.blit(img, x0, 0);
            x0 += img.width;
        }
        out
    }

    /// Stacks images top to bottom (left-aligned) on a black background.
    pub fn stacked(images: &[RgbImage]) -> RgbImage {
        let width = images.iter().map(|i| i.width).max().unwrap_or(0);
        let height = images.iter().map(|i| i.height).sum();
        let mut out = RgbImage::new(width, height);
        let mut y0 = 0;
        for img in images {
            out.blit(img, 0, y0);
            y0 += img.height;
        }
        out
    }
}

/// # PNG
impl RgbImage {
    /// The image encoded as PNG (8-bit RGB).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        self.encode_png(Path::new("<memory>"))
    }

    fn encode_png(&self, path: &Path) -> Result<Vec<u8>> {
        let too_big = || Error::InvalidConfig {
            what: format!(
                "image for {} ({}×{}) is too large for PNG",
                path.display(),
                self.width,
                self.height
            ),
        };
        let width = u32::try_from(self.width).map_err(|_| too_big())?;
        let height = u32::try_from(self.height).map_err(|_| too_big())?;
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let png_err = |source| Error::Png { path: path.to_path_buf(), source: Box::new(source) };
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&self.pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
        Ok(bytes)
    }

    /// Writes the image as PNG, atomically (temporary file in the same folder, then rename).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let bytes = self.encode_png(path)?;
        crate::atomic::write(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_drawn_where_asked_and_measured_exactly() {
        let mut img = RgbImage::filled(64, 20, [255; 3]);
        let w = img.draw_text(2, 3, "L", [0, 0, 0], 2);
        assert_eq!(w, 10);
        let dark = |p: [u8; 3]| p == [0, 0, 0];
        // 'L' is a vertical bar (7 rows) plus a foot of four more columns: 11 font pixels, ×4 at scale 2.
        assert_eq!(img.count_in(0, 0, 64, 20, dark), 11 * 4);
        assert_eq!(img.count_in(2, 3, 4, 17, dark), 14 * 2);
        assert_eq!(img.count_in(12, 0, 64, 20, dark), 0);
        assert_eq!(RgbImage::text_height(2), 14);
    }

    #[test]
    fn composition_keeps_every_pixel() {
        let a = RgbImage::filled(3, 2, [1, 2, 3]);
        let b = RgbImage::filled(2, 4, [9, 9, 9]);
        let s = RgbImage::side_by_side(&[a.clone(), b.clone()]);
        assert_eq!((s.width, s.height), (5, 4));
        assert_eq!(s.get(2, 1), [1, 2, 3]);
        assert_eq!(s.get(0, 3), [0, 0, 0]);
        assert_eq!(s.get(4, 3), [9, 9, 9]);
        let t = RgbImage::stacked(&[a, b]);
        assert_eq!((t.width, t.height), (3, 6));
        assert_eq!(t.get(1, 5), [9, 9, 9]);
        assert_eq!(t.get(2, 5), [0, 0, 0]);
    }

    #[test]
    fn png_round_trips() {
        let mut img = RgbImage::filled(7, 5, [10, 20, 30]);
        img.put(6, 4, [200, 100, 0]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        img.write_png(&path).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (7, 5));
        assert_eq!(&buf[..info.buffer_size()], &img.pixels[..]);
    }
}
