//! The error type of `msd-implant`: every failure says what went wrong and where.

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong designing an implant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The skull label volume has no bone voxel at all.
    #[error("the skull label is empty: no non-zero voxel in {shape:?} (z, y, x) voxels")]
    EmptySkull {
        /// The volume's shape `[z, y, x]`.
        shape: [usize; 3],
    },
    /// The label does not look like a skull: too small, or no bony shell around its centre.
    #[error("the label does not look like a skull: {what}")]
    NotASkull {
        /// What was measured, with the numbers.
        what: String,
    },
    /// The vault's shell is closed: no opening other than natural ones was found.
    #[error(
        "no defect found: the skull's shell is closed above the skull base ({natural} natural opening(s) ignored); \
         pass a point in mm near the defect if it is at the skull base"
    )]
    NoDefect {
        /// Openings seen and classified as natural (foramen magnum, orbits, the open base).
        natural: usize,
    },
    /// Several openings qualify as defects; the caller must point at one.
    #[error("{} candidate defects, centred at {}: pass a point in mm (e.g. --point X,Y,Z) to pick one", .centres.len(), list_points(.centres))]
    SeveralDefects {
        /// Centre of each candidate on the skull's outer surface, LPS mm.
        centres: Vec<[f64; 3]>,
    },
    /// The point given to pick a defect is not near any opening of the shell.
    #[error("the point {} mm is not near any opening of the skull's shell (openings at {})", fmt_point(.point), list_points(.centres))]
    PointNotNearDefect {
        /// The point given, LPS mm.
        point: [f64; 3],
        /// Centres of the openings found, LPS mm.
        centres: Vec<[f64; 3]>,
    },
    /// The defect spans too much of the skull for a single implant design.
    #[error("the defect centred at {} mm is too large: it spans {angle_deg:.0}° seen from the skull's centre (at most {max_deg:.0}°)", fmt_point(.centre))]
    DefectTooLarge {
        /// Centre of the defect, LPS mm.
        centre: [f64; 3],
        /// Its angular radius plus the rim margin, degrees.
        angle_deg: f64,
        /// The largest angle handled, degrees.
        max_deg: f64,
    },
    /// The mirror method was forced but cannot be used (no symmetry plane, or the mirrored side is
    /// missing too).
    #[error("the mirror method cannot be used: {why}")]
    MirrorUnavailable {
        /// Why, with the numbers.
        why: String,
    },
    /// Two volumes that must share a grid do not.
    #[error("{what} do not share a grid: {detail}")]
    GridMismatch {
        /// Which volumes.
        what: &'static str,
        /// The difference (shape, spacing, origin or direction).
        detail: String,
    },
    /// An option is out of its domain.
    #[error("invalid option {name}: {what}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// What is wrong, with the value.
        what: String,
    },
    /// The implant came out empty (e.g. a clearance larger than the defect).
    #[error("the implant is empty after {stage}")]
    EmptyImplant {
        /// The design step after which nothing was left.
        stage: &'static str,
    },
    /// A geometry step (meshing, alignment) failed.
    #[error("geometry step failed: {0}")]
    Geometry(#[from] msd_geom::Error),
    /// A volume could not be built.
    #[error("volume step failed: {0}")]
    Volume(#[from] msd_io::Error),
}

pub(crate) fn fmt_point(p: &[f64; 3]) -> String {
    format!("({:.1}, {:.1}, {:.1})", p[0], p[1], p[2])
}

fn list_points(points: &[[f64; 3]]) -> String {
    if points.is_empty() {
        return "none".into();
    }
    points.iter().map(fmt_point).collect::<Vec<_>>().join(", ")
}
