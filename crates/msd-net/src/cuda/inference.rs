//! Whole-volume segmentation, the CUDA side of [`Backend::segment_slices`](crate::Backend::segment_slices):
//! slices stream through the GPU in batches, the copies of one batch (on the copy stream, through
//! pinned host buffers) overlapping the kernels of its neighbours (compute stream).

use cudarc::driver::{CudaSlice, PinnedHostSlice, sys::CU_MEMHOSTALLOC_WRITECOMBINED};

use super::backend::CudaBackend;
use super::error::{DriverContext, Error, Result};
use super::launch::{self, Batch, Features, Normalisation};
use super::network::{head_of, head_views, run_layers};
use crate::{FeatureStorage, InferenceOptions};

/// Double-buffered staging for streamed inference.
pub(crate) struct InferBuffers {
    batch: Batch,
    storage: FeatureStorage,
    feat: Features,
    raw: [CudaSlice<f32>; 2],
    labels: [CudaSlice<u8>; 2],
    host_in: [PinnedHostSlice<f32>; 2],
    host_out: [PinnedHostSlice<u8>; 2],
}

/// Page-locked host memory, zeroed.
fn pinned<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    msd: &CudaBackend,
    len: usize,
    flags: u32,
) -> Result<PinnedHostSlice<T>> {
    let what = "allocating pinned host memory";
    // SAFETY: the allocation is zeroed below before anything reads it.
    let mut p = unsafe { msd.dev.context().alloc_pinned_with_flags::<T>(len, flags) }.during(what)?;
    let ptr = p.as_mut_ptr().during(what)?;
    // SAFETY: `ptr` points to `len` freshly allocated elements of T, for which all-zero bytes are valid.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    Ok(p)
}

impl CudaBackend {
    fn ensure_infer_buffers(&mut self, batch: Batch, storage: FeatureStorage) -> Result<()> {
        if self.infer.as_ref().is_some_and(|b| b.batch == batch && b.storage == storage) {
            return Ok(());
        }
        self.infer = None;
        let sh = &self.config;
        let overflow = || Error::InvalidArgument {
            op: "segment_slices",
            reason: format!("{batch:?} with {} channels overflows usize", sh.total_channels()),
        };
        let px = batch.images.checked_mul(batch.plane()).ok_or_else(overflow)?;
        let n_in = px.checked_mul(sh.input_channels).ok_or_else(overflow)?;
        let n_feat = px.checked_mul(sh.total_channels()).ok_or_else(overflow)?;
        let s = self.dev.compute_stream();
        let what = "allocating inference buffers";
        let feat = Features::zeros(&self.dev, storage, n_feat)?;
        let raw = [s.alloc_zeros(n_in).during(what)?, s.alloc_zeros(n_in).during(what)?];
        let labels = [s.alloc_zeros(px).during(what)?, s.alloc_zeros(px).during(what)?];
        // Input staging is only written by the host: write-combined makes the upload faster.
        let host_in = [
            pinned::<f32>(self, n_in, CU_MEMHOSTALLOC_WRITECOMBINED)?,
            pinned::<f32>(self, n_in, CU_MEMHOSTALLOC_WRITECOMBINED)?,
        ];
        let host_out = [pinned::<u8>(self, px, 0)?, pinned::<u8>(self, px, 0)?];
        self.infer = Some(InferBuffers { batch, storage, feat, raw, labels, host_in, host_out });
        Ok(())
    }

    /// Segments `n_slices` slices `[n_slices][c_in][h][w]` into class labels `[n_slices][h][w]`,
    /// streaming batches of `opts.batch` slices: while the GPU runs one batch, the next one is uploaded
    /// and the previous one's labels come back.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong input length, a zero batch or a non-finite input value
    /// (reported with its index); launch and driver errors otherwise.
    pub(super) fn stream_slices(
        &mut self,
        input: &[f32],
        n_slices: usize,
        h: usize,
        w: usize,
        opts: InferenceOptions,
    ) -> Result<Vec<u8>> {
        const OP: &str = "segment_slices";
        let per_in = self.config.input_channels * h * w;
        let plane = h * w;
        if opts.batch == 0 || n_slices == 0 || plane == 0 || n_slices.checked_mul(per_in) != Some(input.len())
        {
            return Err(Error::InvalidArgument {
                op: OP,
                reason: format!(
                    "{} values for {n_slices} slices × {} channels × {h} × {w}, batch {} (all must be > 0)",
                    input.len(),
                    self.config.input_channels,
                    opts.batch
                ),
            });
        }
        let b = opts.batch.min(n_slices);
        self.ensure_infer_buffers(Batch { images: b, h, w }, opts.storage)?;
        let mut out = vec![0u8; n_slices * plane];
        let dev = &*self.dev;
        let sh = &self.config;
        let bufs = self.infer.as_mut().ok_or(Error::OutOfOrder { op: OP, needs: "inference buffers" })?;
        let (hw, hb) = head_views(sh, &self.params);
        let copy = dev.copy_stream();
        let n_batches = n_slices.div_ceil(b);
        let drain = |bufs: &InferBuffers, k: usize, out: &mut [u8]| -> Result<()> {
            let first = k * b;
            let count = b.min(n_slices - first);
            let labels = bufs.host_out[k % 2].as_slice().during("waiting for labels")?;
            out[first * plane..(first + count) * plane].copy_from_slice(&labels[..count * plane]);
            Ok(())
        };
        for k in 0..n_batches {
            let slot = k % 2;
            let first = k * b;
            let count = b.min(n_slices - first);
            let src = &input[first * per_in..(first + count) * per_in];
            if let Some(i) = src.iter().position(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument {
                    op: OP,
                    reason: format!("input[{}] is {}", first * per_in + i, src[i]),
                });
            }
            // Waits only for the upload of batch k − 2 from this staging buffer.
            let staging = bufs.host_in[slot].as_mut_slice().during("filling the upload buffer")?;
            staging[..src.len()].copy_from_slice(src);
            copy.memcpy_htod(&bufs.host_in[slot], &mut bufs.raw[slot]).during("uploading slices")?;
            let batch = Batch { images: count, h, w };
            launch::input_normalize(
                dev,
                &bufs.raw[slot].slice(..),
                &mut bufs.feat,
                Normalisation { mean: &self.norm_mean, inv_std: &self.norm_inv_std },
                sh.total_channels(),
                batch,
            )?;
            run_layers(dev, sh, &self.params, &mut bufs.feat, batch)?;
            launch::head_argmax(dev, &bufs.feat, &hw, &hb, &mut bufs.labels[slot], head_of(sh), batch)?;
            copy.memcpy_dtoh(&bufs.labels[slot], &mut bufs.host_out[slot]).during("downloading labels")?;
            if k >= 1 {
                drain(bufs, k - 1, &mut out)?;
            }
        }
        drain(bufs, n_batches - 1, &mut out)?;
        Ok(out)
    }
}
