//! `msd info`: what a volume or mesh file holds, as text or JSON.
use std::path::{Path, PathBuf};

use msd::evaluation::is_mesh_path;
use serde::Serialize;

use crate::cli::InfoArgs;

/// What a volume holds.
#[derive(Debug, Serialize)]
struct VolumeInfo {
    path: PathBuf,
    kind: &'static str,
    shape_zyx: [usize; 3],
    spacing_mm_xyz: [f64; 3],
    origin_lps_mm: [f64; 3],
    direction: [[f64; 3]; 3],
    extent_mm_xyz: [f64; 3],
    /// The value range: left out (absent in JSON) with `--header-only`.
    #[serde(flatten)]
    values: Option<ValueInfo>,
}

/// The values of a volume: what needs every voxel decoded.
#[derive(Debug, Serialize)]
struct ValueInfo {
    hu_min: f32,
    hu_max: f32,
    hu_mean: f64,
    non_finite_voxels: usize,
}

/// What a mesh holds.
#[derive(Debug, Serialize)]
struct MeshInfo {
    path: PathBuf,
    kind: &'static str,
    vertices: usize,
    triangles: usize,
    area_mm2: f64,
    enclosed_volume_ml: Option<f64>,
    bounds_min_lps_mm: Option<[f32; 3]>,
    bounds_max_lps_mm: Option<[f32; 3]>,
    components: usize,
    boundary_edges: usize,
    non_manifold_edges: usize,
    closed: bool,
    watertight: bool,
}

/// One DICOM series found in a folder.
#[derive(Debug, Serialize)]
struct SeriesEntry {
    uid: String,
    modality: String,
    description: String,
    number: Option<i32>,
    slices: usize,
    files: usize,
    not_a_volume: Option<String>,
}

/// What a DICOM folder holds: its series, and the volume of the one read by default.
#[derive(Debug, Serialize)]
struct DicomInfo {
    path: PathBuf,
    kind: &'static str,
    series: Vec<SeriesEntry>,
    /// The series `msd convert` reads without `--series` (the CT series with the most slices).
    default_series: Option<String>,
    gantry_tilt_deg: Option<f64>,
    /// Whether the volume below was resampled onto a regular grid (gantry tilt or uneven slice
    /// spacing; only with `--resample`).
    resampled: bool,
    volume: Option<VolumeInfo>,
    /// Why the default series could not be read as a volume, if so.
    volume_error: Option<String>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let path = &args.path;
    if path.is_dir() {
        let info = dicom_info(path, args.resample)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print_dicom(&info);
        }
    } else if is_mesh_path(path) {
        let info = mesh_info(path)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print_mesh(&info);
        }
    } else {
        let info = if args.header_only { volume_header_info(path)? } else { volume_info(path)? };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print_volume(&info);
        }
    }
    Ok(())
}

fn dicom_info(path: &Path, resample: bool) -> anyhow::Result<DicomInfo> {
    use anyhow::Context as _;
    use msd::io::dicom;
    let series = dicom::list_series(path)
        .with_context(|| format!("cannot list DICOM series in {}", path.display()))?;
    let series: Vec<SeriesEntry> = series
        .into_iter()
        .map(|s| SeriesEntry {
            uid: s.uid,
            modality: s.modality,
            description: s.description,
            number: s.number,
            slices: s.slices,
            files: s.files.len(),
            not_a_volume: s.not_a_volume,
        })
        .collect();
    let (mut default_series, mut tilt, mut volume, mut volume_error) = (None, None, None, None);
    let mut resampled = false;
    match dicom::read_series(path, &super::dicom_options(resample)) {
        Ok(sv) => {
            default_series = Some(sv.series.uid.clone());
            tilt = Some(sv.tilt_deg);
            resampled = sv.resampled_tilt || sv.resampled_spacing;
            volume = Some(describe_native(path, &msd::io::NativeVolume::F32(sv.volume)));
        }
        Err(e) => {
            volume_error = Some(crate::ui::error_chain(&super::with_resample_hint(anyhow::Error::new(e))))
        }
    }
    Ok(DicomInfo {
        path: path.to_path_buf(),
        kind: "dicom",
        series,
        default_series,
        gantry_tilt_deg: tilt,
        resampled,
        volume,
        volume_error,
    })
}

fn print_dicom(i: &DicomInfo) {
    println!("{}: DICOM, {} series", i.path.display(), i.series.len());
    for s in &i.series {
        let default = if i.default_series.as_deref() == Some(&s.uid) { " (default)" } else { "" };
        println!(
            "  {} #{} {} {:?}: {} slices in {} files{default}",
            s.uid,
            s.number.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            s.modality,
            s.description,
            s.slices,
            s.files
        );
        if let Some(why) = &s.not_a_volume {
            // The full reason (every file's) is in --json; one line is enough here.
            let short: String = why.chars().take(150).collect();
            let more = if short.len() < why.len() { " …" } else { "" };
            println!("      not a volume: {short}{more}");
        }
    }
    if let Some(t) = i.gantry_tilt_deg.filter(|t| *t > 0.1) {
        println!("  gantry tilt {t:.2}°");
    }
    if i.resampled {
        println!("  resampled onto a regular grid (--resample)");
    }
    match (&i.volume, &i.volume_error) {
        (Some(v), _) => print_volume(v),
        (None, Some(e)) => println!("  default series not readable as a volume: {e}"),
        (None, None) => {}
    }
}

fn volume_info(path: &Path) -> anyhow::Result<VolumeInfo> {
    use anyhow::Context as _;
    // In the stored type: a u8 label or an i16 CT is summarised without an f32 copy.
    let v = msd::io::read_volume_native(path)
        .with_context(|| format!("cannot read the CT {}", path.display()))?;
    Ok(describe_native(path, &v))
}

/// The grid alone, from the header: no voxel read.
fn volume_header_info(path: &Path) -> anyhow::Result<VolumeInfo> {
    use anyhow::Context as _;
    let h = msd::io::read_volume_header(path)
        .with_context(|| format!("cannot read the header of {}", path.display()))?;
    Ok(describe_grid(path, h.shape, &h.geometry, None))
}

fn describe_native(path: &Path, v: &msd::io::NativeVolume) -> VolumeInfo {
    let summary = v.summary();
    let values = ValueInfo {
        hu_min: summary.min,
        hu_max: summary.max,
        hu_mean: summary.mean,
        non_finite_voxels: summary.non_finite,
    };
    describe_grid(path, v.shape(), v.geometry(), Some(values))
}

fn describe_grid(
    path: &Path,
    shape: [usize; 3],
    g: &msd::io::Geometry,
    values: Option<ValueInfo>,
) -> VolumeInfo {
    let [nz, ny, nx] = shape;
    let s = g.spacing();
    VolumeInfo {
        path: path.to_path_buf(),
        kind: "volume",
        shape_zyx: shape,
        spacing_mm_xyz: s,
        origin_lps_mm: g.origin(),
        direction: g.direction(),
        extent_mm_xyz: [nx as f64 * s[0], ny as f64 * s[1], nz as f64 * s[2]],
        values,
    }
}

fn mesh_info(path: &Path) -> anyhow::Result<MeshInfo> {
    let m = super::read_mesh(path)?;
    let check = m.check();
    let bounds = m.bounds();
    let closed = check.is_closed();
    Ok(MeshInfo {
        path: path.to_path_buf(),
        kind: "mesh",
        vertices: m.vertices().len(),
        triangles: m.triangles().len(),
        area_mm2: m.area(),
        enclosed_volume_ml: closed.then(|| m.enclosed_volume() / 1000.0),
        bounds_min_lps_mm: bounds.map(|b| b.min),
        bounds_max_lps_mm: bounds.map(|b| b.max),
        components: check.components,
        boundary_edges: check.boundary_edges,
        non_manifold_edges: check.non_manifold_edges,
        closed,
        watertight: check.is_watertight(),
    })
}

fn print_volume(i: &VolumeInfo) {
    println!("{}: volume", i.path.display());
    println!("  shape (x × y × z)   {} × {} × {} voxels", i.shape_zyx[2], i.shape_zyx[1], i.shape_zyx[0]);
    println!(
        "  spacing (x, y, z)   {:.4} × {:.4} × {:.4} mm",
        i.spacing_mm_xyz[0], i.spacing_mm_xyz[1], i.spacing_mm_xyz[2]
    );
    println!(
        "  extent              {:.1} × {:.1} × {:.1} mm",
        i.extent_mm_xyz[0], i.extent_mm_xyz[1], i.extent_mm_xyz[2]
    );
    println!(
        "  origin (LPS)        ({:.3}, {:.3}, {:.3}) mm",
        i.origin_lps_mm[0], i.origin_lps_mm[1], i.origin_lps_mm[2]
    );
    for (k, row) in i.direction.iter().enumerate() {
        let label = if k == 0 { "direction (rows)" } else { "" };
        println!("  {label:<19} [{:+.5}, {:+.5}, {:+.5}]", row[0], row[1], row[2]);
    }
    if let Some(v) = &i.values {
        println!("  values              {} .. {} (mean {:.1})", v.hu_min, v.hu_max, v.hu_mean);
        if v.non_finite_voxels > 0 {
            println!("  non-finite voxels   {}", v.non_finite_voxels);
        }
    }
}

fn print_mesh(i: &MeshInfo) {
    println!("{}: mesh", i.path.display());
    println!("  vertices            {}", i.vertices);
    println!("  triangles           {}", i.triangles);
    println!("  area                {:.1} mm²", i.area_mm2);
    if let Some(v) = i.enclosed_volume_ml {
        println!("  enclosed volume     {v:.2} ml");
    }
    if let (Some(lo), Some(hi)) = (i.bounds_min_lps_mm, i.bounds_max_lps_mm) {
        println!(
            "  bounds (LPS)        ({:.1}, {:.1}, {:.1}) .. ({:.1}, {:.1}, {:.1}) mm",
            lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]
        );
    }
    println!("  components          {}", i.components);
    println!("  boundary edges      {}", i.boundary_edges);
    println!("  non-manifold edges  {}", i.non_manifold_edges);
    println!("  closed              {}", if i.closed { "yes" } else { "no" });
    println!("  watertight          {}", if i.watertight { "yes" } else { "no" });
}
