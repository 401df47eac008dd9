//! An MSDnet composed from candle's own tensor operations (`conv2d` with explicit symmetric
//! padding, `cat`, autograd): the correctness oracle for the hand-written kernels and the baseline
//! they are benchmarked against. It is slow and memory-hungry (every layer concatenates), by design
//! the most literal reading of the architecture.
use candle_core::{DType, Device, Tensor, Var};

use crate::kernels::reflect;
use crate::{MsdConfig, Params, Result};

/// An MSDnet built from candle operations, with its parameters as candle [`Var`]s.
#[derive(Debug)]
pub struct CandleMsd {
    config: MsdConfig,
    conv_weights: Vec<Var>,
    conv_biases: Vec<Var>,
    final_weights: Var,
    final_biases: Var,
}

/// Pads the last two dimensions of `x` (`[n, c, h, w]`) by `pad` on each side with numpy's
/// `symmetric` mirroring (edge repeated, periodic beyond one reflection).
pub fn symmetric_pad(x: &Tensor, pad: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let index = |n: usize| -> Result<Tensor> {
        let idx: Vec<u32> = (0..n + 2 * pad).map(|j| reflect(j as isize - pad as isize, n) as u32).collect();
        Ok(Tensor::from_vec(idx, n + 2 * pad, x.device())?)
    };
    Ok(x.index_select(&index(h)?, 2)?.index_select(&index(w)?, 3)?)
}

impl CandleMsd {
    /// Wraps `params` (flat layouts of the crate docs) as candle variables on `device`.
    pub fn new(config: &MsdConfig, params: &Params, device: &Device) -> Result<Self> {
        config.validate()?;
        params.check_shape(config)?;
        let mut conv_weights = Vec::with_capacity(config.depth);
        let mut conv_biases = Vec::with_capacity(config.depth);
        for layer in 0..config.depth {
            let cin = config.layer_inputs(layer);
            let (a, b) = (config.weight_offset(layer), config.weight_offset(layer + 1));
            let wt = Tensor::from_slice(&params.conv_weights[a..b], (config.width, cin, 3, 3), device)?;
            conv_weights.push(Var::from_tensor(&wt)?);
            let bs = &params.conv_biases[layer * config.width..(layer + 1) * config.width];
            conv_biases.push(Var::from_tensor(&Tensor::from_slice(bs, config.width, device)?)?);
        }
        let fw =
            Tensor::from_slice(&params.final_weights, (config.n_classes, config.total_channels()), device)?;
        let fb = Tensor::from_slice(&params.final_biases, config.n_classes, device)?;
        Ok(CandleMsd {
            config: config.clone(),
            conv_weights,
            conv_biases,
            final_weights: Var::from_tensor(&fw)?,
            final_biases: Var::from_tensor(&fb)?,
        })
    }

    /// All feature channels `[n, total_channels, h, w]` for a normalised input `[n, c_in, h, w]`.
    pub fn features(&self, input: &Tensor) -> Result<Tensor> {
        let mut stack = input.to_dtype(DType::F32)?;
        for (layer, &d) in self.config.dilations.iter().enumerate() {
            let padded = symmetric_pad(&stack, d)?;
            let y = padded.conv2d(&self.conv_weights[layer], 0, 1, d, 1)?;
            let b = self.conv_biases[layer].as_tensor().reshape((1, self.config.width, 1, 1))?;
            let y = y.broadcast_add(&b)?.relu()?;
            stack = Tensor::cat(&[&stack, &y], 1)?;
        }
        Ok(stack)
    }

    /// The final 1×1 layer: logits `[n, n_classes, h, w]` from features `[n, total_channels, h, w]`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = features.dims4()?;
        let k = self.config.n_classes;
        let flat = features.reshape((n, c, h * w))?;
        let wt = self.final_weights.as_tensor().unsqueeze(0)?.broadcast_as((n, k, c))?.contiguous()?;
        let out = wt.matmul(&flat)?;
        let b = self.final_biases.as_tensor().reshape((1, k, 1))?;
        Ok(out.broadcast_add(&b)?.reshape((n, k, h, w))?)
    }

    /// Gradients of a scalar `loss` (built from this network's outputs) with respect to all
    /// parameters, in the crate's flat layouts.
    pub fn gradients(&self, loss: &Tensor) -> Result<Params> {
        let grads = loss.backward()?;
        let flat = |v: &Var| -> Result<Vec<f32>> {
            match grads.get(v.as_tensor()) {
                Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                None => Ok(vec![0.0; v.as_tensor().elem_count()]),
            }
        };
        let mut p = Params::zeros(&self.config);
        p.conv_weights.clear();
        p.conv_biases.clear();
        for (wv, bv) in self.conv_weights.iter().zip(&self.conv_biases) {
            p.conv_weights.extend(flat(wv)?);
            p.conv_biases.extend(flat(bv)?);
        }
        p.final_weights = flat(&self.final_weights)?;
        p.final_biases = flat(&self.final_biases)?;
        Ok(p)
    }
}
