//! Voxel element types: how each stored number type is named in file headers and turned into bytes.
//!
//! [`VoxelType`] is what the writers accept (the types a CT or label volume is saved as); the
//! crate-internal [`ScalarType`] is the wider set the readers decode, always into `f32`.

mod sealed {
    pub trait Sealed {}
}

/// A voxel element type that `msd-io` can write: `u8`, `i16`, `u16`, `i32`, `f32` and `f64`.
///
/// The trait is sealed: these are the types NIfTI-1 and NRRD share and that CT and label volumes
/// use, so the writers can promise every one of them round-trips exactly.
pub trait VoxelType: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Size of one value in bytes.
    const SIZE: usize;
    /// The NIfTI-1 `datatype` code.
    const NIFTI_DATATYPE: i16;
    /// The NRRD `type` field value.
    const NRRD_TYPE: &'static str;
    /// Appends the little-endian bytes of `self` to `out`.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! voxel_type {
    ($t:ty, $nifti:expr, $nrrd:expr) => {
        impl sealed::Sealed for $t {}
        impl VoxelType for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const NIFTI_DATATYPE: i16 = $nifti;
            const NRRD_TYPE: &'static str = $nrrd;
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

voxel_type!(u8, 2, "uint8");
voxel_type!(i16, 4, "int16");
voxel_type!(u16, 512, "uint16");
voxel_type!(i32, 8, "int32");
voxel_type!(f32, 16, "float");
voxel_type!(f64, 64, "double");

/// Runs `$run!(type, size)` for the Rust type of a [`ScalarType`].
macro_rules! dispatch {
    ($ty:expr, $run:ident) => {
        match $ty {
            ScalarType::U8 => $run!(u8, 1),
            ScalarType::I8 => $run!(i8, 1),
            ScalarType::U16 => $run!(u16, 2),
            ScalarType::I16 => $run!(i16, 2),
            ScalarType::U32 => $run!(u32, 4),
            ScalarType::I32 => $run!(i32, 4),
            ScalarType::U64 => $run!(u64, 8),
            ScalarType::I64 => $run!(i64, 8),
            ScalarType::F32 => $run!(f32, 4),
            ScalarType::F64 => $run!(f64, 8),
        }
    };
}

/// Byte order of stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

/// A stored number type the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl ScalarType {
    /// Size of one value in bytes.
    pub(crate) fn size(self) -> usize {
        match self {
            ScalarType::U8 | ScalarType::I8 => 1,
            ScalarType::U16 | ScalarType::I16 => 2,
            ScalarType::U32 | ScalarType::I32 | ScalarType::F32 => 4,
            ScalarType::U64 | ScalarType::I64 | ScalarType::F64 => 8,
        }
    }

    /// Decodes `bytes` (exactly `out.len()` values) into `out` as `f32` after `v * slope + inter`
    /// (computed in `f64`). Slope 1 and intercept 0 skip the arithmetic, so integer data up to 2^24
    /// comes out exact.
    pub(crate) fn decode_f32_into(
        self,
        bytes: &[u8],
        order: ByteOrder,
        slope: f64,
        inter: f64,
        out: &mut [f32],
    ) {
        let identity = slope == 1.0 && inter == 0.0;
        macro_rules! run {
            ($t:ty, $n:expr) => {{
                let it =
                    values::<$t, $n>(bytes, order, |a| <$t>::from_le_bytes(a), |a| <$t>::from_be_bytes(a));
                if identity {
                    out.iter_mut().zip(it).for_each(|(o, v)| *o = v as f32);
                } else {
                    out.iter_mut().zip(it).for_each(|(o, v)| *o = (v as f64 * slope + inter) as f32);
                }
            }};
        }
        dispatch!(self, run);
    }

    /// Decodes `bytes` (exactly `out.len()` values) into labels: each value, taken to `f32` exactly as
    /// [`ScalarType::decode_f32_into`] does, must be an integer in 0..=255. Returns the index and value
    /// of the first one that is not (the rest of `out` is then unspecified).
    pub(crate) fn decode_labels_into(
        self,
        bytes: &[u8],
        order: ByteOrder,
        slope: f64,
        inter: f64,
        out: &mut [u8],
    ) -> Option<(usize, f32)> {
        let identity = slope == 1.0 && inter == 0.0;
        if identity && self == ScalarType::U8 {
            out.copy_from_slice(bytes);
            return None;
        }
        let store = |(i, (o, f)): (usize, (&mut u8, f32))| {
            if f.fract() == 0.0 && (0.0..=255.0).contains(&f) {
                *o = f as u8;
                None
            } else {
                Some((i, f))
            }
        };
        macro_rules! run {
            ($t:ty, $n:expr) => {{
                let it =
                    values::<$t, $n>(bytes, order, |a| <$t>::from_le_bytes(a), |a| <$t>::from_be_bytes(a));
                if identity {
                    out.iter_mut().zip(it.map(|v| v as f32)).enumerate().find_map(store)
                } else {
                    out.iter_mut()
                        .zip(it.map(|v| (v as f64 * slope + inter) as f32))
                        .enumerate()
                        .find_map(store)
                }
            }};
        }
        dispatch!(self, run)
    }
}

/// The values of `bytes` (whole `N`-byte values in `order`).
fn values<T, const N: usize>(
    bytes: &[u8],
    order: ByteOrder,
    le: impl Fn([u8; N]) -> T,
    be: impl Fn([u8; N]) -> T,
) -> impl Iterator<Item = T> {
    bytes.chunks_exact(N).map(move |c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        match order {
            ByteOrder::Little => le(a),
            ByteOrder::Big => be(a),
        }
    })
}

/// A voxel type a file can be read into without conversion (`u8`, `i16`, `u16`): the stored values
/// are the values, so nothing is scaled or widened.
pub(crate) trait NativeVoxel: VoxelType + Default {
    /// The stored scalar type this Rust type reads.
    const SCALAR: ScalarType;
    /// Decodes `bytes` (exactly `out.len()` values in `order`) into `out`.
    fn decode_into(bytes: &[u8], order: ByteOrder, out: &mut [Self]);
}

macro_rules! native_voxel {
    ($t:ty, $scalar:ident, $n:expr) => {
        impl NativeVoxel for $t {
            const SCALAR: ScalarType = ScalarType::$scalar;
            fn decode_into(bytes: &[u8], order: ByteOrder, out: &mut [Self]) {
                let it = values::<$t, $n>(bytes, order, <$t>::from_le_bytes, <$t>::from_be_bytes);
                out.iter_mut().zip(it).for_each(|(o, v)| *o = v);
            }
        }
    };
}

native_voxel!(u8, U8, 1);
native_voxel!(i16, I16, 2);
native_voxel!(u16, U16, 2);

/// Converts `data` into little-endian bytes, `chunk` values at a time, handing each chunk to `sink`.
pub(crate) fn for_each_le_chunk<T: VoxelType, E>(
    data: &ndarray::Array3<T>,
    chunk: usize,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = Vec::with_capacity(chunk.max(1) * T::SIZE);
    for v in data.iter() {
        v.put_le(&mut buf);
        if buf.len() >= chunk * T::SIZE {
            sink(&buf)?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        sink(&buf)?;
    }
    Ok(())
}
