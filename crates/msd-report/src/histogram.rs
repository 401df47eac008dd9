//! The histogram of a surface's signed deviations: how much of it lies how far inside or outside
//! the reference, bars coloured with the renders' blue–white–red scale, an axis in millimetres.
use msd_metrics::{DeviationMap, deviation_colour};

use crate::image::RgbImage;
use crate::{Error, Result};

const AXIS: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [128, 128, 128];
const OUTLINE: [u8; 3] = [160, 160, 160];
const BACKGROUND: [u8; 3] = [255, 255, 255];

/// Draws the histogram of `map`'s signed distances in `bins` bars over ±`range_mm` (default: the
/// renders' range, the 95th percentile of |deviation| rounded up); values beyond the range fall in
/// the end bars. The picture has a title, the x axis in mm with round ticks and labels, and the
/// tallest bar's vertex count.
///
/// # Errors
/// [`Error::InvalidConfig`] for `bins` outside 1–2000 or a range that is not finite and positive.
///
/// ```
/// use msd_geom::Mesh;
/// use msd_metrics::DeviationMap;
/// let mesh = Mesh::new(vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], vec![[0, 1, 2]])?;
/// let map = DeviationMap::from_values(mesh, vec![-0.5, 0.1, 0.8])?;
/// let image = msd_report::histogram::deviation_histogram(&map, 20, Some(1.0))?;
/// assert!(image.width > 400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deviation_histogram(map: &DeviationMap, bins: usize, range_mm: Option<f64>) -> Result<RgbImage> {
    let range = range_mm.unwrap_or_else(|| crate::render::auto_range_mm(map.signed_mm().iter().copied()));
    if !(range.is_finite() && range > 0.0) {
        return Err(Error::InvalidConfig {
            what: format!("histogram range {range} mm; it must be finite and positive"),
        });
    }
    if !(1..=2000).contains(&bins) {
        return Err(Error::InvalidConfig { what: format!("{bins} histogram bins; use 1 to 2000") });
    }
    let mut counts = vec![0u64; bins];
    // A DeviationMap holds finite values only.
    for &v in map.signed_mm() {
        let u = (f64::from(v) + range) / (2.0 * range);
        counts[((u * bins as f64).floor().max(0.0) as usize).min(bins - 1)] += 1;
    }
    let scale = 2;
    let text_h = RgbImage::text_height(scale);
    let bar_w = (800 / bins).max(1);
    let (plot_w, plot_h) = (bar_w * bins, 300usize);
    let (left, right) = (30usize, 30usize);
    let top = 2 * text_h + 20;
    let bottom = 3 * text_h + 24;
    let (width, height) = (plot_w + left + right, plot_h + top + bottom);
    let mut img = RgbImage::filled(width, height, BACKGROUND);
    let tallest = counts.iter().copied().max().unwrap_or(0);
    img.draw_text(left, 6, "signed distance to the reference", AXIS, scale);
    img.draw_text(left, 10 + text_h, &format!("tallest bar: {tallest} vertices"), GRID, scale);
    let base = top + plot_h;
    let peak = tallest.max(1) as f64;
    for (b, &c) in counts.iter().enumerate() {
        let h = (c as f64 / peak * plot_h as f64).round() as usize;
        let centre = -range + (b as f64 + 0.5) * 2.0 * range / bins as f64;
        let x0 = left + b * bar_w;
        // Pale bars would vanish on white: outline them in grey.
        img.fill_rect(x0, base - h, x0 + bar_w, base, OUTLINE);
        if bar_w > 2 && h > 1 {
            img.fill_rect(x0 + 1, base - h + 1, x0 + bar_w - 1, base, deviation_colour(centre, range));
        }
    }
    let x_of = |mm: f64| left as f64 + (mm + range) / (2.0 * range) * plot_w as f64;
    let zero = x_of(0.0).round() as usize;
    img.fill_rect(zero, top, zero + 1, base, GRID);
    img.fill_rect(left, base, left + plot_w, base + 1, AXIS);
    let step = tick_step(range);
    // As many decimals as the step has (0.1 mm steps: one), so 3 × 0.1 reads 0.3.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut k = (-range / step).ceil() as i64;
    while (k as f64) * step <= range + 1e-9 {
        let mm = k as f64 * step;
        let x = (x_of(mm).round() as usize).min(width - 1);
        img.fill_rect(x, base, x + 1, base + if k == 0 { 8 } else { 5 }, AXIS);
        let label = if k == 0 { "0".to_string() } else { format!("{mm:+.decimals$}") };
        let w = RgbImage::text_width(&label, scale);
        img.draw_text(x.saturating_sub(w / 2).min(width.saturating_sub(w)), base + 10, &label, AXIS, scale);
        k += 1;
    }
    let caption = "mm (- inside, + outside the reference)";
    let w = RgbImage::text_width(caption, scale);
    img.draw_text((width.saturating_sub(w)) / 2, base + 16 + text_h, caption, AXIS, scale);
    Ok(img)
}

/// A round tick step (1, 2 or 5 × 10ⁿ mm) giving about 4 to 10 ticks on each side of zero.
fn tick_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let exp = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * exp).find(|s| *s >= raw).unwrap_or(10.0 * exp)
}

#[cfg(test)]
mod tests {
    use msd_geom::Mesh;

    use super::*;

    fn map(values: Vec<f32>) -> DeviationMap {
        let n = values.len();
        let vertices: Vec<[f32; 3]> = (0..n).map(|i| [i as f32, (i % 2) as f32, 0.0]).collect();
        let triangles: Vec<[u32; 3]> = (0..n as u32 - 2).map(|i| [i, i + 1, i + 2]).collect();
        DeviationMap::from_values(Mesh::new(vertices, triangles).unwrap(), values).unwrap()
    }

    #[test]
    fn bars_sit_on_their_side_of_zero_in_the_scale_colours_with_a_labelled_axis() {
        // Everything 0.8 mm outside: one saturated red bar right of zero, nothing left of it.
        let img = deviation_histogram(&map(vec![0.8; 10]), 20, Some(1.0)).unwrap();
        let (w, h) = (img.width, img.height);
        let zero = w / 2;
        let reddish = |c: [u8; 3]| c[0] > 200 && c[1] < 120 && c[2] < 120;
        let bluish = |c: [u8; 3]| c[2] > 200 && c[0] < 120 && c[1] < 120;
        assert!(img.count_in(zero, 0, w, h, reddish) > 100, "a red bar right of zero");
        assert_eq!(img.count_in(0, 0, zero, h, reddish), 0);
        assert_eq!(img.count_in(0, 0, w, h, bluish), 0);
        // Round tick labels: 0.2 mm steps read +0.6, not +0.6000000000000001.
        assert_eq!(tick_step(1.0), 0.2);
        // Tick labels and captions are drawn (dark text pixels below the axis and above the plot).
        let dark = |c: [u8; 3]| c == AXIS;
        assert!(img.count_in(0, h - 60, w, h, dark) > 50, "axis labels");
        assert!(img.count_in(0, 0, w, 30, dark) > 50, "title");
        // The mirror image: inside the reference, a blue bar left of zero.
        let img = deviation_histogram(&map(vec![-0.8; 10]), 20, Some(1.0)).unwrap();
        assert!(img.count_in(0, 0, img.width / 2, img.height, bluish) > 100);
    }

    #[test]
    fn bad_bins_and_ranges_are_typed_errors() {
        let m = map(vec![0.1, 0.2, 0.3]);
        for (bins, range) in [(0, Some(1.0)), (2001, Some(1.0)), (10, Some(0.0)), (10, Some(f64::NAN))] {
            assert!(
                matches!(deviation_histogram(&m, bins, range), Err(Error::InvalidConfig { .. })),
                "{bins} {range:?}"
            );
        }
        // Values beyond the range fall in the end bars: the default range covers them.
        assert!(deviation_histogram(&map(vec![-9.0, 0.1, 9.0]), 10, None).is_ok());
    }
}
