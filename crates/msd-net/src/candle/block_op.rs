//! The MSD block (all 3×3 layers) as a candle custom op: its forward and backward run the
//! hand-written kernels, so a network built around it trains through candle's autograd and
//! optimisers (candle-nn's `AdamW`, for example) at the kernels' speed.
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::kernels::{self, Isa};
use crate::{MsdConfig, Result};

/// The 3×3 part of an MSDnet as a [`CustomOp3`] over (input, flat 3×3 weights, flat biases).
#[derive(Debug, Clone)]
pub struct MsdBlockOp {
    config: MsdConfig,
    isa: Isa,
}

fn candle_err(e: crate::Error) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("msd-block: {what} must be contiguous")))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

impl MsdBlockOp {
    /// The op for an architecture, with the best kernels of this CPU.
    pub fn new(config: &MsdConfig) -> Result<Self> {
        config.validate()?;
        Ok(MsdBlockOp { config: config.clone(), isa: Isa::detect() })
    }
}

impl CustomOp3 for MsdBlockOp {
    fn name(&self) -> &'static str {
        "msd-block"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l1.shape().dims4()?;
        let cfg = &self.config;
        if c != cfg.input_channels {
            return Err(candle_core::Error::Msg(format!(
                "msd-block: input has {c} channels, the network reads {}",
                cfg.input_channels
            )));
        }
        let (x, wt, b) =
            (contiguous(s1, l1, "input")?, contiguous(s2, l2, "weights")?, contiguous(s3, l3, "biases")?);
        let (hw, ct) = (h * w, cfg.total_channels());
        let mut out = vec![0.0f32; n * ct * hw];
        out.par_chunks_mut(ct * hw.max(1)).zip(x.par_chunks(c * hw.max(1))).try_for_each(
            |(feat, input)| {
                feat[..c * hw].copy_from_slice(input);
                kernels::forward(self.isa, cfg, wt, b, feat, h, w).map_err(candle_err)
            },
        )?;
        Ok((CpuStorage::F32(out), Shape::from((n, ct, h, w))))
    }

    /// Gradients of the weights and biases from the gradient of all feature channels. The input
    /// gets none (`None`): the network's input is data, not a parameter.
    fn bwd(
        &self,
        _x: &Tensor,
        weights: &Tensor,
        biases: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, ct, h, w) = res.dims4()?;
        let cfg = &self.config;
        let feats = res.flatten_all()?.to_vec1::<f32>()?;
        let mut grads = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let wt = weights.flatten_all()?.to_vec1::<f32>()?;
        let per = ct * h * w;
        let parts: Vec<(Vec<f32>, Vec<f32>)> = grads
            .par_chunks_mut(per.max(1))
            .zip(feats.par_chunks(per.max(1)))
            .map(|(g, f)| {
                let mut dw = vec![0.0f32; cfg.conv_weight_len()];
                let mut db = vec![0.0f32; cfg.conv_bias_len()];
                kernels::backward(self.isa, cfg, &wt, f, g, &mut dw, &mut db, h, w).map_err(candle_err)?;
                Ok((dw, db))
            })
            .collect::<candle_core::Result<_>>()?;
        let mut dw = vec![0.0f32; cfg.conv_weight_len()];
        let mut db = vec![0.0f32; cfg.conv_bias_len()];
        for (pw, pb) in &parts {
            dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dw = Tensor::from_vec(dw, weights.shape(), weights.device())?;
        let db = Tensor::from_vec(db, biases.shape(), biases.device())?;
        Ok((None, Some(dw), Some(db)))
    }
}

/// All feature channels `[n, total_channels, h, w]` of the MSD block for an input
/// `[n, input_channels, h, w]`, flat 3×3 weights `[conv_weight_len]` and biases
/// `[conv_bias_len]` (the crate's layouts), computed by the hand-written kernels and
/// differentiable with respect to the weights and biases through candle's autograd.
pub fn msd_block(config: &MsdConfig, input: &Tensor, weights: &Tensor, biases: &Tensor) -> Result<Tensor> {
    let op = MsdBlockOp::new(config)?;
    Ok(input.contiguous()?.apply_op3(&weights.contiguous()?, &biases.contiguous()?, op)?)
}
