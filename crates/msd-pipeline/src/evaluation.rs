//! Evaluation of a segmentation against a reference, as in the study's Table 1: Dice between label
//! volumes and mean absolute surface deviation (MAD) between surfaces, for the whole skull and in a
//! region near the defect.
//!
//! Either side may be a label volume or a mesh ([`Shape`]). Label volumes are meshed for the surface
//! metrics (marching cubes on their grid, so vertices lie in patient mm); Dice needs two label
//! volumes on one grid and is left out otherwise.
use std::borrow::Cow;
use std::path::Path;

use msd_geom::Mesh;
use msd_io::LabelVolume;
use msd_metrics::{CaseReport, Region, SurfaceDistanceOptions};

use crate::Result;
use crate::surface::SurfaceOptions;

/// A segmentation as a label volume (non-zero voxels are the object) or as a surface mesh.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A label volume on a CT grid.
    Labels(LabelVolume),
    /// A surface mesh in LPS millimetres.
    Mesh(Mesh),
}

/// File extensions read as meshes by [`Shape::read`]; everything else is read as a label volume.
pub const MESH_EXTENSIONS: [&str; 3] = ["stl", "ply", "obj"];

/// Whether `path` names a mesh file (by its extension).
pub fn is_mesh_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MESH_EXTENSIONS.iter().any(|m| m.eq_ignore_ascii_case(e)))
}

impl Shape {
    /// Reads a mesh (`.stl`, `.ply`, `.obj`) or a label volume (NIfTI, NRRD, DICOM) from `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Shape> {
        let path = path.as_ref();
        if is_mesh_path(path) {
            Ok(Shape::Mesh(msd_geom::read_mesh(path)?))
        } else {
            Ok(Shape::Labels(msd_io::read_labels(path)?))
        }
    }

    /// The label volume, when this is one.
    pub fn labels(&self) -> Option<&LabelVolume> {
        match self {
            Shape::Labels(l) => Some(l),
            Shape::Mesh(_) => None,
        }
    }

    /// The surface: the mesh itself, or the label volume meshed with `options`.
    pub fn to_mesh(&self, options: &SurfaceOptions) -> Result<Mesh> {
        match self {
            Shape::Labels(l) => options.extract(l),
            Shape::Mesh(m) => Ok(m.clone()),
        }
    }
}

/// What an HTML report case ([`msd_report::HtmlCase::from_shapes`]) draws of a shape: the mesh
/// itself, or the label volume meshed with [`SurfaceOptions`]' defaults.
impl msd_report::html::CaseSurface for Shape {
    type Error = crate::Error;

    fn case_surface(&self) -> Result<Cow<'_, Mesh>> {
        match self {
            Shape::Labels(l) => Ok(Cow::Owned(SurfaceOptions::default().extract(l)?)),
            Shape::Mesh(m) => Ok(Cow::Borrowed(m)),
        }
    }
}

/// How [`evaluate`] measures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EvaluationOptions {
    /// Surface sampling and tolerance (surface Dice) for the distance metrics.
    pub distances: SurfaceDistanceOptions,
    /// How label volumes are meshed for the surface metrics.
    pub meshing: SurfaceOptions,
    /// A region (e.g. within 10 mm of the defect) for the region-restricted metrics.
    pub region: Option<Region>,
    /// Whether to compute surface distances at all (Dice alone is much faster).
    pub surface_metrics: bool,
}

impl Default for EvaluationOptions {
    /// Two samples per mm² (at most 2 million per surface), surface Dice at 1 mm, label volumes
    /// meshed as they are (no clean-up: the prediction is judged as it was made), no region.
    fn default() -> Self {
        EvaluationOptions {
            distances: SurfaceDistanceOptions::new().samples_per_mm2(2.0).tolerance_mm(1.0),
            meshing: SurfaceOptions::raw(),
            region: None,
            surface_metrics: true,
        }
    }
}

impl EvaluationOptions {
    /// Returns the options with a region for the region-restricted metrics.
    pub fn region(mut self, region: impl Into<Option<Region>>) -> Self {
        self.region = region.into();
        self
    }

    /// Returns the options with surface metrics switched on or off.
    pub fn surface_metrics(mut self, on: bool) -> Self {
        self.surface_metrics = on;
        self
    }

    /// Evaluates `pred` against `reference` as case `case` (see [`evaluate`]).
    pub fn evaluate(&self, case: &str, pred: &Shape, reference: &Shape) -> Result<CaseReport> {
        let mut report = CaseReport::new(case);
        if let (Some(p), Some(r)) = (pred.labels(), reference.labels()) {
            report = report.with_overlap(&msd_metrics::overlap(p, r)?);
            if let Some(region) = &self.region {
                report = report.with_region_overlap(&msd_metrics::overlap_in_region(p, r, region)?);
            }
        }
        if self.surface_metrics {
            let pm = pred.to_mesh(&self.meshing)?;
            let rm = reference.to_mesh(&self.meshing)?;
            let whole = self.distances.compute(&pm, &rm)?;
            report = report.with_surface(&whole);
            if let Some(region) = &self.region {
                let local = self.distances.clone().region(region.clone()).compute(&pm, &rm)?;
                report = report.with_region_surface(&local);
            }
        }
        Ok(report)
    }
}

/// Evaluates a prediction against a reference with the default [`EvaluationOptions`]: Dice (when
/// both are label volumes) and the surface distances (MAD, HD95, …).
pub fn evaluate(pred: &Shape, reference: &Shape) -> Result<CaseReport> {
    EvaluationOptions::default().evaluate("case", pred, reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use msd_phantom::{PhantomConfig, generate};

    #[test]
    fn a_segmentation_against_itself_is_perfect() {
        let head = generate(&PhantomConfig::quick(), 2).unwrap();
        let s = Shape::Labels(head.skull.clone());
        let r = evaluate(&s, &s).unwrap();
        assert_eq!(r.metrics.dice, Some(1.0));
        assert!(r.metrics.mad_mm.unwrap() < 1e-4, "{:?}", r.metrics.mad_mm);
    }

    #[test]
    fn threshold_baseline_is_imperfect_but_close() {
        let head = generate(&PhantomConfig::quick().with_noise(20.0), 4).unwrap();
        let bone = crate::baseline::threshold(&head.ct, 300.0);
        let r = EvaluationOptions::default()
            .evaluate("t", &Shape::Labels(bone), &Shape::Labels(head.skull.clone()))
            .unwrap();
        let dice = r.metrics.dice.unwrap();
        assert!(dice > 0.6 && dice < 0.99, "dice {dice}");
        assert!(r.metrics.mad_mm.unwrap() > 0.0);
    }

    #[test]
    fn mesh_against_volume_has_distances_but_no_dice() {
        let head = generate(&PhantomConfig::quick().with_craniectomy_probability(1.0), 6).unwrap();
        let mesh = crate::surface::surface(&head.skull).unwrap();
        let region = Region::Mask(head.defect_region.clone().unwrap());
        let r = EvaluationOptions::default()
            .region(region)
            .evaluate("m", &Shape::Mesh(mesh), &Shape::Labels(head.skull.clone()))
            .unwrap();
        assert_eq!(r.metrics.dice, None);
        assert!(r.metrics.mad_mm.unwrap() < 1e-6);
        assert!(r.region.as_ref().and_then(|m| m.mad_mm).is_some());
    }

    #[test]
    fn a_report_case_meshes_a_label_volume_and_takes_a_mesh_as_it_is() {
        let head = generate(&PhantomConfig::quick(), 2).unwrap();
        let labels = Shape::Labels(head.skull.clone());
        let mesh = Shape::Mesh(crate::surface::surface(&head.skull).unwrap());
        let case = msd_report::HtmlCase::from_shapes("c", &labels, &mesh).unwrap();
        assert!(case.range_mm().is_some());
        let html = msd_report::HtmlReport::new("study").case(case).to_html();
        assert!(html.contains("\"role\":\"reference\"") && html.contains("\"role\":\"prediction\""));
    }
}
