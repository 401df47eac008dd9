//! A trained model: architecture, weights, normalisation, class names, the pixel spacing it was
//! trained at and provenance, stored as one safetensors file with JSON metadata.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::{AdamState, Error, MsdConfig, Normalization, Params, Result};

/// The metadata key holding the model's JSON description.
const META_KEY: &str = "msd_net";
/// Version of the file layout written by this crate.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// A trained (or freshly initialised) MSDnet with everything needed to apply it to a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The architecture.
    pub config: MsdConfig,
    /// The weights.
    pub params: Params,
    /// How HU values become network input.
    pub normalization: Normalization,
    /// One name per class (`["background", "bone"]`).
    pub class_names: Vec<String>,
    /// In-plane pixel spacing `(columns, rows)` in mm of the images the model was trained on;
    /// inference resamples scans to it.
    pub pixel_spacing_mm: [f64; 2],
    /// Free-form training provenance (data, epochs, losses, software version, ...).
    pub provenance: BTreeMap<String, String>,
    /// The HU iso-value that defines the skull class's boundary in the training labels, when they
    /// were made by a threshold (`Some(300.0)` for the engineers' recipe; set by training with
    /// [`crate::Augmentation::threshold_labels_hu`]). Segmenting then places the boundary on the
    /// scan's own iso-surface ([`crate::SegmentOptions::snap_to_iso`]).
    pub label_iso_hu: Option<f32>,
    /// The range `[min, max]` of in-plane pixel sizes (mm) the model was trained on (its resolution
    /// augmentation); segmenting resamples planes whose pixels fall outside it to the nearest end
    /// ([`crate::SegmentOptions::fit_to_trained_pixels`]). `None`: not recorded (older files).
    pub trained_pixel_range_mm: Option<[f64; 2]>,
}

/// What the model file's JSON metadata holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ModelMeta {
    format_version: u32,
    config: MsdConfig,
    normalization: Normalization,
    class_names: Vec<String>,
    pixel_spacing_mm: [f64; 2],
    provenance: BTreeMap<String, String>,
    #[serde(default)]
    label_iso_hu: Option<f32>,
    #[serde(default)]
    trained_pixel_range_mm: Option<[f64; 2]>,
}

impl Model {
    /// A model with freshly initialised weights ([`Params::init`]), the default class names
    /// (`background`, `class1`, ...) and 1 mm pixels.
    pub fn new(config: MsdConfig, normalization: Normalization, seed: u64) -> Result<Self> {
        let params = Params::init(&config, seed)?;
        let class_names = (0..config.n_classes)
            .map(|k| if k == 0 { "background".to_string() } else { format!("class{k}") })
            .collect();
        let mut provenance = BTreeMap::new();
        provenance.insert("software".into(), format!("msd-net {}", env!("CARGO_PKG_VERSION")));
        Ok(Model {
            config,
            params,
            normalization,
            class_names,
            pixel_spacing_mm: [1.0, 1.0],
            provenance,
            label_iso_hu: None,
            trained_pixel_range_mm: None,
        })
    }

    /// Checks that all parts agree: a valid config, parameters of its shape and finite,
    /// one class name per class, a usable normalisation and a positive pixel spacing.
    pub fn validate(&self) -> Result<()> {
        self.config.validate()?;
        self.params.check_shape(&self.config)?;
        self.params.check_finite()?;
        self.normalization.validate()?;
        if self.class_names.len() != self.config.n_classes {
            return Err(Error::len("class names", self.config.n_classes, self.class_names.len()));
        }
        if let Some(&s) = self.pixel_spacing_mm.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::InvalidValue {
                name: "model pixel spacing (mm)",
                value: s,
                expected: "finite and > 0",
            });
        }
        if let Some(iso) = self.label_iso_hu
            && !iso.is_finite()
        {
            return Err(Error::InvalidValue {
                name: "label iso-value (HU)",
                value: iso.into(),
                expected: "finite",
            });
        }
        if let Some([lo, hi]) = self.trained_pixel_range_mm {
            if !(lo.is_finite() && lo > 0.0) {
                return Err(Error::InvalidValue {
                    name: "trained pixel range, low end (mm)",
                    value: lo,
                    expected: "finite and > 0",
                });
            }
            if !(hi.is_finite() && lo <= hi) {
                return Err(Error::InvalidValue {
                    name: "trained pixel range, high end (mm)",
                    value: hi,
                    expected: "finite and at least the low end",
                });
            }
        }
        Ok(())
    }

    fn meta(&self) -> ModelMeta {
        ModelMeta {
            format_version: MODEL_FORMAT_VERSION,
            config: self.config.clone(),
            normalization: self.normalization,
            class_names: self.class_names.clone(),
            pixel_spacing_mm: self.pixel_spacing_mm,
            provenance: self.provenance.clone(),
            label_iso_hu: self.label_iso_hu,
            trained_pixel_range_mm: self.trained_pixel_range_mm,
        }
    }

    /// Writes the model as safetensors (tensors `conv_weights` `[n]`, `conv_biases`
    /// `[depth, width]`, `final_weights` `[n_classes, total_channels]`, `final_biases`
    /// `[n_classes]`, all F32, metadata key `msd_net` with the JSON description). The write is
    /// atomic: a temporary file in the same folder, renamed over `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.validate()?;
        let meta = serde_json::to_string(&self.meta())
            .map_err(|e| Error::Metadata { path: path.as_ref().into(), what: e.to_string() })?;
        write_tensors(
            path.as_ref(),
            &tensor_list(&self.config, &self.params, ""),
            vec![(META_KEY.into(), meta)],
        )
    }

    /// Reads a model written by [`Model::save`], checking every tensor's presence, dtype, shape
    /// and finiteness against the metadata.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// The skull model that ships with msd: an MSDnet trained by
    /// `cargo run --release --example train_default_model` on the real head CT of
    /// `../shared/data/cthead` and synthetic heads, with the augmentation of
    /// [`crate::Augmentation::robust`], to reproduce the engineers' definition of bone (≥ 300 HU on
    /// the noise-free image) on scans of any clinical pixel size. `docs/model-card.md` says what it
    /// was trained on, how accurate it is and where it is not to be trusted.
    ///
    /// ```
    /// let model = msd_net::Model::default_skull()?;
    /// assert_eq!(model.class_names, ["background", "skull"]);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn default_skull() -> Result<Self> {
        static BYTES: &[u8] = include_bytes!("../models/skull.safetensors");
        Self::from_bytes(BYTES, "msd-net/models/skull.safetensors (built in)")
    }

    /// Reads a model from the bytes of a file written by [`Model::save`]; `path` names the source
    /// in errors.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::Format { path: path.into(), what: e.to_string() })?;
        let meta_json = read_meta(path, bytes)?;
        let meta_json = meta_json.get(META_KEY).ok_or_else(|| Error::Metadata {
            path: path.into(),
            what: format!("no `{META_KEY}` metadata entry"),
        })?;
        let meta: ModelMeta = serde_json::from_str(meta_json)
            .map_err(|e| Error::Metadata { path: path.into(), what: format!("`{META_KEY}` JSON: {e}") })?;
        if meta.format_version != MODEL_FORMAT_VERSION {
            return Err(Error::Metadata {
                path: path.into(),
                what: format!(
                    "format version {} (this build reads {MODEL_FORMAT_VERSION})",
                    meta.format_version
                ),
            });
        }
        meta.config.validate().map_err(|e| Error::Metadata { path: path.into(), what: e.to_string() })?;
        let params = read_params(path, &st, &meta.config, "")?;
        let model = Model {
            config: meta.config,
            params,
            normalization: meta.normalization,
            class_names: meta.class_names,
            pixel_spacing_mm: meta.pixel_spacing_mm,
            provenance: meta.provenance,
            label_iso_hu: meta.label_iso_hu,
            trained_pixel_range_mm: meta.trained_pixel_range_mm,
        };
        model.validate().map_err(|e| match e {
            Error::NonFinite { name, index, .. } => Error::NonFinite { path: path.into(), name, index },
            other => Error::Metadata { path: path.into(), what: other.to_string() },
        })?;
        Ok(model)
    }
}

/// The parameter tensors with their names (prefixed) and shapes.
fn tensor_list<'a>(config: &MsdConfig, p: &'a Params, prefix: &str) -> Vec<(String, Vec<usize>, &'a [f32])> {
    vec![
        (format!("{prefix}conv_weights"), vec![config.conv_weight_len()], &p.conv_weights),
        (format!("{prefix}conv_biases"), vec![config.depth, config.width], &p.conv_biases),
        (format!("{prefix}final_weights"), vec![config.n_classes, config.total_channels()], &p.final_weights),
        (format!("{prefix}final_biases"), vec![config.n_classes], &p.final_biases),
    ]
}

/// Serialises tensors plus metadata and writes them atomically.
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    meta: Vec<(String, String)>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Format { path: path.into(), what: e.to_string() })
        })
        .collect::<Result<Vec<_>>>()?;
    let meta: HashMap<String, String> = meta.into_iter().collect();
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Format { path: path.into(), what: e.to_string() })?;
    // One atomic writer for the workspace (temporary file, sync, rename; permissions 0644).
    msd_io::write_atomic(path, |w: &mut dyn Write| w.write_all(&data).map_err(|e| Error::io(path, e)))
}

/// The metadata map of a safetensors buffer.
pub(crate) fn read_meta(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Format { path: path.into(), what: e.to_string() })?;
    meta.metadata()
        .clone()
        .ok_or_else(|| Error::Metadata { path: path.into(), what: "the file has no metadata".into() })
}

/// Reads one F32 tensor of the expected shape, checking that it is finite.
pub(crate) fn read_tensor(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>> {
    let view = st.tensor(name).map_err(|_| Error::MissingTensor { path: path.into(), name: name.into() })?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(Error::TensorShape {
            path: path.into(),
            name: name.into(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    let v: Vec<f32> =
        view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("chunk of 4"))).collect();
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite { path: path.into(), name: name.into(), index });
    }
    Ok(v)
}

/// Reads the four parameter tensors (names prefixed by `prefix`).
pub(crate) fn read_params(
    path: &Path,
    st: &SafeTensors<'_>,
    config: &MsdConfig,
    prefix: &str,
) -> Result<Params> {
    let mut p = Params::zeros(config);
    let shapes: Vec<(String, Vec<usize>)> =
        tensor_list(config, &Params::zeros(config), prefix).into_iter().map(|(n, s, _)| (n, s)).collect();
    for (target, (name, shape)) in p.vectors_mut().into_iter().zip(shapes) {
        *target = read_tensor(path, st, &name, &shape)?;
    }
    Ok(p)
}

/// Writes model parameters plus Adam moments and extra metadata (a training checkpoint).
pub(crate) fn write_checkpoint(
    path: &Path,
    model: &Model,
    best: &Params,
    adam: &AdamState,
    state_json: String,
) -> Result<()> {
    model.validate()?;
    let mut tensors = tensor_list(&model.config, &model.params, "");
    tensors.extend(tensor_list(&model.config, best, "best."));
    tensors.extend(tensor_list(&model.config, &adam.m, "adam_m."));
    tensors.extend(tensor_list(&model.config, &adam.v, "adam_v."));
    let meta = serde_json::to_string(&model.meta())
        .map_err(|e| Error::Metadata { path: path.into(), what: e.to_string() })?;
    write_tensors(
        path,
        &tensors,
        vec![
            (META_KEY.into(), meta),
            ("train_state".into(), state_json),
            ("adam_step".into(), adam.step.to_string()),
        ],
    )
}

/// Reads a checkpoint written by [`write_checkpoint`]: model, Adam state and the training state JSON.
pub(crate) fn read_checkpoint(path: &Path) -> Result<(Model, Params, AdamState, String)> {
    let model = Model::load(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Format { path: path.into(), what: e.to_string() })?;
    let meta = read_meta(path, &bytes)?;
    let bad = |what: &str| Error::Metadata { path: path.into(), what: what.into() };
    let step: u64 = meta.get("adam_step").and_then(|s| s.parse().ok()).ok_or_else(|| bad("no adam_step"))?;
    let state = meta.get("train_state").cloned().ok_or_else(|| bad("no train_state"))?;
    let m = read_params(path, &st, &model.config, "adam_m.")?;
    let v = read_params(path, &st, &model.config, "adam_v.")?;
    let best = read_params(path, &st, &model.config, "best.")?;
    Ok((model, best, AdamState { step, m, v }, state))
}
