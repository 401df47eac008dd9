//! The loss curve of a training run, as CSV and as a PNG plot.
//!
//! The plot shows the training loss (blue) and the validation loss (orange) per epoch on a
//! logarithmic axis, with a grid line at every power of ten and the best epoch marked by a grey
//! vertical line.
use std::fmt::Write as _;
use std::path::Path;

use msd_net::EpochStats;

use crate::Result;
use crate::image::RgbImage;

/// The epochs' statistics as CSV: `epoch,train_loss,validation_loss,validation_dice,seconds`.
pub fn to_csv(history: &[EpochStats]) -> String {
    let mut s = String::from("epoch,train_loss,validation_loss,validation_dice,seconds\n");
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for e in history {
        let _ = writeln!(
            s,
            "{},{:.6},{},{},{:.3}",
            e.epoch,
            e.train_loss,
            opt(e.validation_loss),
            opt(e.validation_dice),
            e.seconds
        );
    }
    s
}

/// Writes the CSV atomically.
pub fn write_csv(path: &Path, history: &[EpochStats]) -> Result<()> {
    crate::atomic::write_text(path, &to_csv(history))
}

const TRAIN_COLOUR: [u8; 3] = [40, 90, 220];
const VALIDATION_COLOUR: [u8; 3] = [240, 130, 20];

/// Renders the loss curve (`width` × `height` pixels, white background).
pub fn render(history: &[EpochStats], best_epoch: Option<usize>, width: usize, height: usize) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    img.pixels.fill(255);
    let margin = 20usize;
    let (w, h) = (width.saturating_sub(2 * margin).max(1), height.saturating_sub(2 * margin).max(1));
    let values: Vec<f64> = history
        .iter()
        .flat_map(|e| [Some(e.train_loss), e.validation_loss])
        .flatten()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    // Axes.
    for x in margin..margin + w {
        img.put(x, margin + h, [0, 0, 0]);
    }
    for y in margin..=margin + h {
        img.put(margin, y, [0, 0, 0]);
    }
    if values.is_empty() {
        return img;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max).log10().ceil().max(lo + 1.0);
    let y_of = |v: f64| -> usize {
        let t = ((v.max(1e-12).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
        margin + h - (t * h as f64).round() as usize
    };
    let n = history.len();
    let x_of = |i: usize| -> usize { if n <= 1 { margin + w / 2 } else { margin + (i * (w - 1)) / (n - 1) } };
    let mut decade = lo;
    while decade <= hi {
        let y = y_of(10f64.powf(decade));
        for x in (margin + 1..margin + w).step_by(3) {
            img.put(x, y, [190, 190, 190]);
        }
        decade += 1.0;
    }
    if let Some(best) = best_epoch.and_then(|b| history.iter().position(|e| e.epoch == b)) {
        for y in (margin..margin + h).step_by(2) {
            img.put(x_of(best), y, [150, 150, 150]);
        }
    }
    let series: [(Vec<Option<f64>>, [u8; 3]); 2] = [
        (history.iter().map(|e| Some(e.train_loss)).collect(), TRAIN_COLOUR),
        (history.iter().map(|e| e.validation_loss).collect(), VALIDATION_COLOUR),
    ];
    for (points, colour) in series {
        let mut last: Option<(usize, usize)> = None;
        for (i, v) in points.iter().enumerate() {
            let Some(v) = v.filter(|v| v.is_finite()) else {
                last = None;
                continue;
            };
            let p = (x_of(i), y_of(v));
            if let Some(q) = last {
                line(&mut img, q, p, colour);
            }
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                img.put(p.0 + dx, p.1 + dy, colour);
            }
            last = Some(p);
        }
    }
    img
}

/// Draws a two-pixel-wide line (Bresenham).
fn line(img: &mut RgbImage, a: (usize, usize), b: (usize, usize), colour: [u8; 3]) {
    let (mut x0, mut y0) = (a.0 as i64, a.1 as i64);
    let (x1, y1) = (b.0 as i64, b.1 as i64);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        img.put(x0 as usize, y0 as usize, colour);
        img.put(x0 as usize, y0 as usize + 1, colour);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

/// Writes the loss curve as a 640 × 360 PNG, atomically.
pub fn write_png(path: &Path, history: &[EpochStats], best_epoch: Option<usize>) -> Result<()> {
    render(history, best_epoch, 640, 360).write_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize, train: f64, val: f64) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: train,
            validation_loss: Some(val),
            validation_dice: Some(0.9),
            seconds: 1.0,
        }
    }

    #[test]
    fn csv_has_one_row_per_epoch() {
        let h = [stats(1, 0.5, 0.4), stats(2, 0.2, 0.25)];
        let csv = to_csv(&h);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().nth(2).unwrap().starts_with("2,0.200000,0.250000,0.900000"));
    }

    #[test]
    fn plot_draws_both_series() {
        let h = [stats(1, 0.5, 0.4), stats(2, 0.2, 0.25), stats(3, 0.1, 0.2)];
        let img = render(&h, Some(3), 200, 100);
        let has = |c: [u8; 3]| img.pixels.chunks(3).any(|p| p == c);
        assert!(has(TRAIN_COLOUR) && has(VALIDATION_COLOUR));
    }
}
