//! Training data and the train → segment steps of the workflow.
//!
//! A training set pairs CT volumes with their skull labels, given either as label volumes or as the
//! gold-standard meshes medical engineers make (voxelised onto the CT's grid with msd-geom, a voxel
//! being skull when its centre is inside the mesh), as in the study.
//!
//! ```
//! use msd_net::MsdConfig;
//! use msd_phantom::{PhantomConfig, generate};
//! use msd_pipeline::training::{TrainingSet, segment, train};
//!
//! let mut set = TrainingSet::new();
//! let head = generate(&PhantomConfig::quick(), 1)?;
//! set.push_labels("phantom 1", head.ct.clone(), head.skull.clone())?;
//! let mut config = msd_pipeline::training::skull_train_config(MsdConfig::new(4, 1, 1, 2));
//! config.epochs = 1;
//! config.patch_size = Some(32);
//! let model = train(&set, &config)?;
//! let seg = segment(&model, &head.ct)?;
//! assert_eq!(seg.labels.shape(), head.ct.shape());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use msd_geom::Mesh;
use msd_geom::{Cleanup, CleanupReport};
use msd_io::{LabelVolume, Volume};
use msd_net::{
    Dataset, LossConfig, Model, MsdConfig, SegmentOptions, Segmentation, TrainConfig, TrainOutcome,
    TrainProgress,
};

use crate::{Error, Result};

/// One training case: a CT in HU and its label volume on the same grid.
#[derive(Debug, Clone)]
pub struct TrainingCase {
    /// A name for messages (usually the CT's file name).
    pub name: String,
    /// The CT in Hounsfield units.
    pub ct: Volume<f32>,
    /// The labels on the CT's grid (0 background, 1 skull).
    pub labels: LabelVolume,
}

/// CT volumes paired with labels: what [`train`] learns from.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    cases: Vec<TrainingCase>,
}

impl TrainingSet {
    /// An empty set.
    pub fn new() -> Self {
        TrainingSet::default()
    }

    /// Adds a CT with its label volume; they must share a grid (shape, spacing, origin, direction).
    pub fn push_labels(
        &mut self,
        name: impl Into<String>,
        ct: Volume<f32>,
        labels: LabelVolume,
    ) -> Result<()> {
        let name = name.into();
        ct.check_same_grid(&labels, 1e-3)
            .map_err(|source| Error::Case { case: name.clone(), source: Box::new(source.into()) })?;
        self.cases.push(TrainingCase { name, ct, labels });
        Ok(())
    }

    /// Adds a CT with a gold-standard mesh (LPS mm), voxelised onto the CT's grid. The mesh must lie
    /// over the CT: a mesh that covers no voxel centre is refused, as it is in another frame.
    pub fn push_mesh(&mut self, name: impl Into<String>, ct: Volume<f32>, mesh: &Mesh) -> Result<()> {
        let name = name.into();
        let labels = mesh_to_labels(mesh, &ct)
            .map_err(|e| Error::Case { case: name.clone(), source: Box::new(e.into()) })?;
        self.cases.push(TrainingCase { name, ct, labels });
        Ok(())
    }

    /// Adds a CT with a gold-standard mesh exported in another frame: the mesh is first aligned
    /// rigidly (ICP, from its pose as given and from a centroid and principal-axes start, the
    /// better kept) to the CT's bone surface at `bone_hu`, then voxelised. Returns the alignment (transform and RMS residual in mm).
    pub fn push_mesh_aligned(
        &mut self,
        name: impl Into<String>,
        ct: Volume<f32>,
        mesh: &Mesh,
        bone_hu: f32,
    ) -> Result<msd_geom::Alignment> {
        let name = name.into();
        let in_case = |e: Error| Error::Case { case: name.clone(), source: Box::new(e) };
        let bone = bone_surface(&ct, bone_hu).map_err(in_case)?;
        // A head is nearly symmetric, so a principal-axes start can land on a flipped pose; ICP
        // from the mesh as it is serves meshes that are only slightly off. Keep the better one.
        let mut best: Option<msd_geom::Alignment> = None;
        for coarse_start in [false, true] {
            let options = msd_geom::AlignOptions { coarse_start, ..msd_geom::AlignOptions::default() };
            let a = msd_geom::align_icp(mesh, &bone, &options).map_err(|e| in_case(e.into()))?;
            if best.is_none_or(|b| a.rms_mm < b.rms_mm) {
                best = Some(a);
            }
        }
        let alignment = best.expect("two alignments were tried");
        let moved = mesh.transformed(&alignment.transform);
        let labels = mesh_to_labels(&moved, &ct).map_err(|e| in_case(e.into()))?;
        self.cases.push(TrainingCase { name, ct, labels });
        Ok(alignment)
    }

    /// The cases, in the order they were added.
    pub fn cases(&self) -> &[TrainingCase] {
        &self.cases
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether the set has no case.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// The msd-net dataset of these cases, giving `input_channels` channels per sample (1, or
    /// `2k + 1` for 2.5D), resampled in-plane to `pixel_spacing_mm` `(columns, rows)` (`None`: the
    /// first case's spacing).
    pub fn to_dataset(&self, input_channels: usize, pixel_spacing_mm: Option<[f64; 2]>) -> Result<Dataset> {
        let mut dataset = Dataset::new(input_channels)?;
        if let Some(s) = pixel_spacing_mm {
            dataset = dataset.with_pixel_spacing(s)?;
        }
        for case in &self.cases {
            dataset
                .add(&case.ct, &case.labels)
                .map_err(|e| Error::Case { case: case.name.clone(), source: Box::new(e.into()) })?;
        }
        Ok(dataset)
    }
}

/// The CT's bone surface at `bone_hu`: every component of the iso-surface with at least a tenth of
/// the largest one's triangles. A skull's outer and inner surfaces are separate components where the
/// vault is intact, and both are needed to align a skull model; specks and the table are dropped.
fn bone_surface(ct: &Volume<f32>, bone_hu: f32) -> Result<Mesh> {
    let surface = msd_geom::marching_cubes(ct, bone_hu)?;
    let components = surface.connected_components();
    let largest = components.sizes.iter().copied().max().unwrap_or(0);
    if largest == 0 {
        return Err(Error::InvalidConfig {
            what: format!("the CT has no surface at {bone_hu} HU to align to"),
        });
    }
    let keep = |t: usize| components.sizes[components.triangle_component[t] as usize] * 10 >= largest;
    Ok(surface.filter_triangles(keep))
}

/// Voxelises a closed mesh onto the CT's grid (1 inside, 0 outside); it lives in msd-geom
/// ([`msd_geom::mesh_to_labels`]) and is re-exported here, where the workflow first needed it.
pub use msd_geom::mesh_to_labels;

/// The loss for skull segmentation: plain cross-entropy. Class weights above 1 for bone and a soft
/// Dice term both reward calling uncertain voxels bone, which moves the 0.5 boundary outwards (into
/// the 250–300 HU band for a 300 HU definition); the plain loss puts it where the labels do.
pub fn skull_loss() -> LossConfig {
    LossConfig { class_weights: None, dice_weight: 0.0 }
}

/// A training configuration for skull segmentation with `network` (input channels and depth), the
/// [`skull_loss`], class names `background` and `skull`, and msd-net's other defaults (Adam 1e-3,
/// 128² crops, augmentation, 10 % validation, early stopping).
pub fn skull_train_config(network: MsdConfig) -> TrainConfig {
    TrainConfig {
        network,
        loss: skull_loss(),
        class_names: Some(vec!["background".into(), "skull".into()]),
        ..TrainConfig::default()
    }
}

/// Trains an MSDnet on the set with `config` and returns the model with the best validation loss.
pub fn train(set: &TrainingSet, config: &TrainConfig) -> Result<Model> {
    Ok(train_with_progress(set, config, |_| {})?.model)
}

/// Trains like [`train`], reporting every batch through `progress`, and returns the whole outcome
/// (model, loss history, why it stopped).
pub fn train_with_progress(
    set: &TrainingSet,
    config: &TrainConfig,
    progress: impl FnMut(&TrainProgress),
) -> Result<TrainOutcome> {
    if set.is_empty() {
        return Err(Error::InvalidConfig { what: "the training set is empty".into() });
    }
    let dataset = set.to_dataset(config.network.input_channels, None)?;
    Ok(msd_net::train(&dataset, config, progress)?)
}

/// Segments a CT with a model the way engineers keep a skull: the network on the scan's own grid,
/// then [`msd_geom::Cleanup::default`] (the largest 26-connected bone component, enclosed pockets
/// up to 100 mm³ filled). Labels on the CT's grid.
pub fn segment(model: &Model, ct: &Volume<f32>) -> Result<Segmentation> {
    Ok(segment_with(model, ct, &SegmentOptions::default(), &Cleanup::default(), |_, _| {})?.0)
}

/// Segments like [`segment`] with explicit options: how the network runs, and the clean-up
/// ([`Cleanup::none`] keeps the network's output). The clean-up applies to two-class (background,
/// skull) models; models with more classes are returned as the network labelled them. Returns the
/// segmentation and what the clean-up changed.
pub fn segment_with(
    model: &Model,
    ct: &Volume<f32>,
    options: &SegmentOptions,
    cleanup: &Cleanup,
    progress: impl FnMut(usize, usize),
) -> Result<(Segmentation, CleanupReport)> {
    cleanup.validate()?;
    let mut seg = model.segment_with(ct, options, progress)?;
    let mut report = CleanupReport::default();
    if model.config.n_classes == 2 {
        let (labels, r) = cleanup.apply(&seg.labels)?;
        seg.labels = labels;
        report = r;
    }
    Ok((seg, report))
}
