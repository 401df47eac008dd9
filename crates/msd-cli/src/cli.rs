//! The command line: every subcommand and its options (clap derive).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// CT skull segmentation for cranial implants: from a CT scan to a printable skull STL and an
/// evaluation report.
#[derive(Debug, Parser)]
#[command(name = "msd", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Print nothing but results and errors (no progress bars).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The instruction set the CPU training kernels run with on this machine (`avx512`, `avx2` or
/// `scalar`).
pub fn cpu_kernels() -> &'static str {
    msd::net::kernels::Isa::detect().name()
}

/// The kernels `msd segment` runs on this machine's CPU by default (`--precision auto`):
/// `amx-bf16` or `avx512-bf16` where the CPU has them, else the `f32` ones (`avx512`, …).
pub fn cpu_inference_kernels() -> &'static str {
    msd::net::kernels::InferenceKernels::select(msd::net::kernels::Precision::Auto).name()
}

/// Whether this build has the CUDA kernels (the `cuda` feature).
pub const CUDA_COMPILED_IN: bool = cfg!(feature = "cuda");

/// `msd -V`: the version, the CPU kernels chosen at run time and whether CUDA was compiled in.
pub fn short_version() -> String {
    format!(
        "{} (CPU kernels: {} training, {} inference; CUDA: {})",
        env!("CARGO_PKG_VERSION"),
        cpu_kernels(),
        cpu_inference_kernels(),
        if CUDA_COMPILED_IN { "compiled in" } else { "not compiled in" }
    )
}

/// `msd --version`: [`short_version`] plus every instruction set this CPU could run.
pub fn long_version() -> String {
    use msd::net::kernels::{Bf16Isa, Isa};
    let available: Vec<&str> = Isa::available().into_iter().map(|i| i.name()).collect();
    let bf16: Vec<&str> = Bf16Isa::available().into_iter().map(|i| i.name()).collect();
    format!(
        "{}\nCPU kernels: {} for training (this CPU runs: {})\nCPU inference: {} by default \
         (--precision auto; f32 with --precision f32; bf16 kernels this CPU runs: {})\nCUDA: {}",
        env!("CARGO_PKG_VERSION"),
        cpu_kernels(),
        available.join(", "),
        cpu_inference_kernels(),
        bf16.join(", "),
        if CUDA_COMPILED_IN {
            "compiled in (whether this machine can run it, driver, GPU and NVRTC, is checked when a \
             command runs with --device cuda or auto)"
        } else {
            "not compiled in (build with --features cuda)"
        }
    )
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a DICOM folder, NIfTI, NRRD or mesh file holds.
    Info(InfoArgs),
    /// Convert a DICOM folder or file, NIfTI or NRRD to NIfTI or NRRD, geometry kept.
    Convert(ConvertArgs),
    /// Train an MSDnet on CT scans paired with label volumes or gold-standard meshes.
    Train(TrainArgs),
    /// Segment the skull in a CT scan (with the shipped skull model, or a trained one).
    Segment(SegmentArgs),
    /// Turn a label volume into a cleaned, watertight surface mesh.
    Mesh(MeshArgs),
    /// Turn a closed mesh into a label volume on a CT's grid.
    Label(LabelArgs),
    /// Evaluate segmentations against references: Dice, MAD, HD95, whole skull and in a region.
    Eval(EvalArgs),
    /// Design the implant that closes a skull's defect: label volume and printable STL.
    Implant(ImplantArgs),
    /// The global-threshold baseline: bone is every voxel at or above a HU level.
    Threshold(ThresholdArgs),
    /// Run the whole workflow on synthetic head CTs: train, segment, mesh, evaluate, compare.
    Demo(DemoArgs),
}

/// `msd info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A DICOM folder or file, a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) volume, or a mesh
    /// (.stl, .ply, .obj).
    pub path: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Describe a DICOM series with uneven slice spacing or gantry tilt as resampled onto a
    /// regular grid (`msd convert --resample` and `msd segment --resample` read it so).
    #[arg(long)]
    pub resample: bool,
    /// Shape and geometry only, from the file's header: no voxel is read or decoded, so a 512³
    /// volume takes as long as a tiny one (the value range is left out). NIfTI and NRRD volumes
    /// only; a DICOM series or a mesh is read whole.
    #[arg(long)]
    pub header_only: bool,
}

/// `msd convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The input volume: DICOM folder or file, NIfTI or NRRD.
    pub input: PathBuf,
    /// The output: .nii, .nii.gz or .nrrd.
    pub output: PathBuf,
    /// The DICOM series to convert where the folder holds several (`msd info` lists their UIDs).
    #[arg(long)]
    pub series: Option<String>,
    /// Resample a DICOM series with uneven slice spacing or gantry tilt onto a regular grid
    /// (refused otherwise).
    #[arg(long)]
    pub resample: bool,
    /// Treat the input as a label volume (written as 8-bit labels).
    #[arg(long)]
    pub labels: bool,
}

/// `msd train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A training CT; give one per case, each followed by its --labels or --meshes.
    #[arg(long = "ct", value_name = "CT", required = true)]
    pub ct: Vec<PathBuf>,
    /// The label volume of the CT before it (on the CT's grid).
    #[arg(long, value_name = "LABELS")]
    pub labels: Vec<PathBuf>,
    /// The gold-standard mesh (LPS mm) of the CT before it; voxelised onto its grid.
    #[arg(long, value_name = "MESH")]
    pub meshes: Vec<PathBuf>,
    /// Align each mesh rigidly to its CT's bone surface (ICP) before voxelising it, for meshes
    /// exported in another frame.
    #[arg(long)]
    pub align: bool,
    /// Add this many synthetic head phantoms to the training set.
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Where to write the model (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many minutes (the best model so far is kept).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Seed for initialisation, sampling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue from the checkpoint left by an interrupted run with the same --out.
    #[arg(long)]
    pub resume: bool,
    /// Network depth (layers).
    #[arg(long, default_value_t = 60)]
    pub depth: usize,
    /// Input channels: 1 (2D) or 2k+1 (the slice and k neighbours on each side).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Side of the square training crops in pixels.
    #[arg(long, default_value_t = 128)]
    pub patch: usize,
    /// Fraction of slices held back for validation.
    #[arg(long, default_value_t = 0.1)]
    pub validation: f32,
    /// Zoom each training crop by a random factor in [1 − s, 1 + s] (scale augmentation, so the
    /// model tolerates pixel spacings near the one it is trained at; 0 turns it off).
    #[arg(long, default_value_t = 0.1, value_name = "S", allow_negative_numbers = true)]
    pub scale_jitter: f32,
    /// How training samples are varied: `robust` for what real scans differ in (pixels of
    /// 0.3–1.0 mm, slab thickness, reconstruction kernel, calibration, noise up to 150 HU, metal
    /// streaks), `basic` (flips, ±5 % / ±20 HU calibration, 20 HU noise) or `none`.
    #[arg(long, value_enum, default_value_t = AugmentArg::Robust)]
    pub augment: AugmentArg,
    /// The labels are a HU threshold's (e.g. 300 for the engineers' recipe): their boundary then
    /// follows the changes a threshold would see (pixel size, slab, kernel, calibration).
    #[arg(long, value_name = "HU", allow_negative_numbers = true)]
    pub label_threshold: Option<f32>,
    /// What runs the training steps: the kernels directly, or candle's autograd over them (the
    /// same model up to rounding, slower).
    #[arg(long, value_enum, default_value_t = EngineArg::Kernels)]
    pub engine: EngineArg,
    /// Where training runs: cpu, cuda (the first GPU), cuda:N or auto (a GPU when this build has
    /// CUDA and one is usable, else the CPU; the candle engine always runs on the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: msd::net::Device,
}

/// `--augment` of `msd train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AugmentArg {
    /// `Augmentation::robust`: what real scans from other scanners differ in.
    Robust,
    /// `Augmentation::default`: flips, small calibration changes and noise.
    Basic,
    /// No augmentation.
    None,
}

/// `--engine` of `msd train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// The CPU kernels called directly, flat parameter buffers.
    Kernels,
    /// Parameters as candle `Var`s, the MSD block as a candle custom op, candle's autograd.
    Candle,
}

impl From<EngineArg> for msd::net::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Kernels => msd::net::Engine::Kernels,
            EngineArg::Candle => msd::net::Engine::Candle,
        }
    }
}

/// The slice orientations a volume is segmented along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Axes {
    /// Axial slices only.
    Axial,
    /// Axial, coronal and sagittal passes, probabilities averaged.
    All,
}

/// `msd segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The CT scan: DICOM folder or file, NIfTI or NRRD. With --out-dir, several scans, or folders
    /// of cases (each subfolder a DICOM series, each NIfTI/NRRD file a case).
    #[arg(value_name = "SCAN", required_unless_present_any = ["input", "list"])]
    pub scans: Vec<PathBuf>,
    /// A CT scan (the same as SCAN); repeat it for several scans with --out-dir.
    #[arg(long, value_name = "SCAN")]
    pub input: Vec<PathBuf>,
    /// A text file listing scans or folders of cases, one path a line (blank lines and lines
    /// starting with # are skipped; relative paths are relative to the file's folder).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Segment every case into DIR/CASE/ (skull.nii.gz, skull.stl) and record each case's
    /// status, outputs, timings and skull volume in DIR/manifest.json; finished cases are skipped
    /// on a rerun.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "mesh", "probabilities", "preview", "reference"])]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: segment every case again, even those the manifest records as done.
    #[arg(long)]
    pub force: bool,
    /// With --out-dir: also write each case's skull probability volume (skull_probability.nii.gz).
    #[arg(long)]
    pub save_probabilities: bool,
    /// With --out-dir: also write each case's preview PNGs (into DIR/CASE/preview/).
    #[arg(long)]
    pub save_previews: bool,
    /// The trained model (safetensors); default: the skull model that ships with msd.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The label volume to write: .nii, .nii.gz or .nrrd.
    #[arg(long, required_unless_present = "out_dir")]
    pub out: Option<PathBuf>,
    /// Also write the skull surface (.stl, .ply, .obj).
    #[arg(long)]
    pub mesh: Option<PathBuf>,
    /// Write axial, coronal and sagittal preview PNGs into this folder.
    #[arg(long)]
    pub preview: Option<PathBuf>,
    /// A reference label volume or mesh drawn (green) in the previews.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Slice orientations.
    #[arg(long, value_enum, default_value_t = Axes::Axial)]
    pub axes: Axes,
    /// Also write the skull probability volume here.
    #[arg(long)]
    pub probabilities: Option<PathBuf>,
    /// Resample a DICOM series with uneven slice spacing or gantry tilt onto a regular grid
    /// (refused otherwise).
    #[arg(long)]
    pub resample: bool,
    /// Resample each plane to the model's pixel spacing and the probabilities back, instead of
    /// segmenting on the scan's own grid.
    #[arg(long)]
    pub resample_to_model: bool,
    /// Keep the network's own boundary. By default, a model trained on threshold-defined labels
    /// (the shipped one: ≥ 300 HU) has its boundary placed on the scan's own iso-surface near the
    /// network's boundary, weighed against the network by the scan's measured noise.
    #[arg(long)]
    pub network_boundary: bool,
    /// Segment on the scan's own pixels even where they lie outside the pixel sizes the model was
    /// trained on (by default such planes are resampled to the nearest trained size, and the
    /// probabilities back).
    #[arg(long)]
    pub native_pixels: bool,
    /// Keep the network's output as it is: no clean-up (by default only the largest connected
    /// bone component is kept and enclosed pockets are filled, as engineers do).
    #[arg(long)]
    pub no_cleanup: bool,
    /// Keep every bone component of at least this volume (mm³) instead of only the largest.
    #[arg(long, value_name = "MM3", allow_negative_numbers = true)]
    pub keep_above: Option<f64>,
    /// Fill enclosed pockets up to this volume (mm³; 0: none).
    #[arg(long, value_name = "MM3", default_value_t = 100.0, allow_negative_numbers = true)]
    pub fill_cavities: f64,
    /// Where the network runs: cpu, cuda (the first GPU), cuda:N or auto (a GPU when this build
    /// has CUDA and one is usable, else the CPU).
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    pub device: msd::net::Device,
    /// The number format of the feature maps on the CPU: auto (bf16 where the CPU has AMX or
    /// AVX512-BF16, else f32), f32 (bit-for-bit what training evaluates) or bf16.
    #[arg(long, value_name = "PRECISION", default_value = "auto")]
    pub precision: msd::net::kernels::Precision,
}

/// `msd mesh`.
#[derive(Debug, Args)]
pub struct MeshArgs {
    /// The label volume (non-zero voxels are the object).
    pub labels: PathBuf,
    /// The mesh to write (.stl, .ply, .obj).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep only this many largest connected components (0: all).
    #[arg(long, default_value_t = 1)]
    pub keep: usize,
    /// Drop components with fewer triangles than this.
    #[arg(long, default_value_t = 50)]
    pub min_triangles: usize,
    /// Mesh only voxels of this label value (default: every non-zero voxel).
    #[arg(long)]
    pub label: Option<u8>,
    /// Taubin smoothing iterations (volume-preserving; 0: none).
    #[arg(long, default_value_t = 0)]
    pub smooth: usize,
    /// Decimate to at most this many triangles.
    #[arg(long)]
    pub decimate: Option<usize>,
    /// Largest surface deviation decimation may cause, mm.
    #[arg(long, default_value_t = 0.1)]
    pub max_deviation: f64,
}

/// `msd label`.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// A closed mesh (.stl, .ply, .obj) in LPS mm.
    pub mesh: PathBuf,
    /// The CT whose grid the labels are made on.
    #[arg(long)]
    pub like: PathBuf,
    /// The label volume to write (.nii, .nii.gz, .nrrd).
    #[arg(long)]
    pub out: PathBuf,
    /// Accept a mesh that is not closed (inside is then decided by winding-number voting).
    #[arg(long)]
    pub allow_open: bool,
}

/// `msd eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A predicted label volume or mesh; repeat for several cases (paired with --ref in order).
    #[arg(long = "pred", value_name = "PRED", required_unless_present = "pred_dir")]
    pub pred: Vec<PathBuf>,
    /// A reference label volume or mesh, one per --pred.
    #[arg(long = "ref", value_name = "REF", required_unless_present = "pred_dir")]
    pub reference: Vec<PathBuf>,
    /// A whole study: the output folder of `msd segment --out-dir`. Every case its manifest
    /// records as done (or skipped) is evaluated against the reference of the same name in
    /// --ref-dir.
    #[arg(long, value_name = "DIR", requires = "ref_dir", conflicts_with_all = ["pred", "reference", "implant"])]
    pub pred_dir: Option<PathBuf>,
    /// The references of --pred-dir: for case C, the first of C.nii.gz, C.nii, C.nrrd, C.nhdr,
    /// C.stl, C.ply, C.obj or C/skull.nii.gz in this folder.
    #[arg(long, value_name = "DIR", requires = "pred_dir")]
    pub ref_dir: Option<PathBuf>,
    /// A region mask (e.g. defect_region.nii.gz) for the metrics near the defect; one for all
    /// cases or one per case.
    #[arg(long)]
    pub region: Vec<PathBuf>,
    /// Write the report as JSON here ("-" for standard output instead of the table).
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Write the report as CSV here.
    #[arg(long, value_name = "OUT")]
    pub csv: Option<PathBuf>,
    /// Write the report as Markdown here.
    #[arg(long, value_name = "OUT")]
    pub markdown: Option<PathBuf>,
    /// Write a self-contained HTML report here: the table, a deviation render of each case and an
    /// interactive 3D view of the meshes (opens offline).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// With --html: the CT of each case (one per --pred, in order), for axial, coronal and
    /// sagittal slices of the prediction (red) and the reference (green) over it in the report.
    /// With --pred-dir the manifest's inputs are used.
    #[arg(long, value_name = "CT", requires = "html")]
    pub ct: Vec<PathBuf>,
    /// With --html: a designed implant's mesh for each case (one per --pred, in order), shown in
    /// the report's 3D view beside the skull. With --pred-dir, CASE/implant.stl where it exists.
    #[arg(long, value_name = "MESH", requires = "html")]
    pub implant_mesh: Vec<PathBuf>,
    /// Skip surface metrics (Dice only; fast).
    #[arg(long)]
    pub no_surface: bool,
    /// Score implants the AutoImplant way: Dice, boundary Dice (in a band around the defect's rim)
    /// and HD95 between each predicted and true implant (label volumes). The band comes from
    /// --skull (--band-mm around the rim) or is given as --region.
    #[arg(long)]
    pub implant: bool,
    /// With --implant: the defective skull the true implant closes; the boundary band holds the
    /// voxels within --band-mm of the rim where they meet. One for all cases or one per case.
    #[arg(long, value_name = "SKULL")]
    pub skull: Vec<PathBuf>,
    /// With --implant --skull: width of the band around the defect's rim (mm; default 10, as
    /// AutoImplant).
    #[arg(long, value_name = "MM", allow_hyphen_values = true)]
    pub band_mm: Option<f64>,
}

/// `msd implant`.
#[derive(Debug, Args)]
pub struct ImplantArgs {
    /// The defective skull as a label volume (NIfTI or NRRD; non-zero = bone).
    #[arg(long, value_name = "SKULL")]
    pub skull: Option<PathBuf>,
    /// A CT instead of --skull: segmented first with --model, or the shipped skull model, and the
    /// engineers' clean-up.
    #[arg(long, value_name = "CT", conflicts_with = "skull")]
    pub ct: Option<PathBuf>,
    /// The trained model that segments --ct (default: the shipped skull model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The implant label volume to write (.nii, .nii.gz, .nrrd), on the skull's grid.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the implant's surface (.stl, .ply, .obj), LPS mm.
    #[arg(long)]
    pub mesh: Option<PathBuf>,
    /// How to model the missing bone.
    #[arg(long, value_enum, default_value_t = ImplantMethod::Auto)]
    pub method: ImplantMethod,
    /// A point near the defect, "X,Y,Z" in LPS mm, when the skull has several openings.
    #[arg(long, value_name = "X,Y,Z", allow_hyphen_values = true)]
    pub point: Option<String>,
    /// Gap between the implant and the remaining bone at the rim (mm).
    #[arg(long, default_value_t = 0.0, value_name = "MM")]
    pub clearance: f64,
}

/// `msd implant --method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImplantMethod {
    /// Mirror for a one-sided defect on a symmetric skull, patch otherwise.
    Auto,
    /// The healthy side mirrored across the mid-sagittal plane, fitted to the rim.
    Mirror,
    /// A thin-plate patch of the inner and outer table spanning the rim.
    Patch,
}

/// `msd threshold`.
#[derive(Debug, Args)]
pub struct ThresholdArgs {
    /// The CT scan.
    pub scan: PathBuf,
    /// Bone threshold in HU.
    #[arg(long, default_value_t = 300.0)]
    pub hu: f32,
    /// The label volume to write (.nii, .nii.gz, .nrrd).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep only the largest connected component (what engineers do next by hand).
    #[arg(long)]
    pub largest: bool,
}

/// `msd demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the STLs, previews and report.
    #[arg(long, default_value = "msd-demo")]
    pub out: PathBuf,
    /// Small volumes and a shallow network: about a minute (for CI).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the phantoms and the training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the final report as JSON on standard output instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 unless MSDnet's mean Dice reaches 0.95 and, at the higher noise level,
    /// at least the threshold baseline's (what CI checks).
    #[arg(long)]
    pub check: bool,
}
