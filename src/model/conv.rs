//! A 3×3-style "same" convolution whose backward pass is fast on the CPU.
//!
//! candle computes a conv2d's input gradient with `conv_transpose2d`, a direct loop at
//! about a third of conv2d's speed (notes/candle-cpu.md §4.5). For stride 1 the same
//! gradient is a plain conv2d of the output gradient with the kernel transposed and
//! flipped, which this op uses.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Storage, Tensor};

use crate::error::Result;

struct SameConv {
    padding: usize,
}

fn cpu_tensor(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Tensor> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("SameConv needs contiguous inputs".into()))?;
    let data = storage.as_slice::<f32>()?[start..end].to_vec();
    Tensor::from_vec(data, layout.shape(), &candle_core::Device::Cpu)
}

impl CustomOp2 for SameConv {
    fn name(&self) -> &'static str {
        "same-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = cpu_tensor(s1, l1)?.conv2d(&cpu_tensor(s2, l2)?, self.padding, 1, 1, 1)?;
        let (storage, _) = y.storage_and_layout();
        match &*storage {
            Storage::Cpu(s) => Ok((s.try_clone(y.layout())?, y.shape().clone())),
            _ => Err(candle_core::Error::Msg(
                "SameConv runs on the CPU only".into(),
            )),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let flipped = w.transpose(0, 1)?.contiguous()?.flip(&[2, 3])?;
        let dx = grad.conv2d(&flipped, self.padding, 1, 1, 1)?;
        let dw = x
            .transpose(0, 1)?
            .contiguous()?
            .conv2d(&grad.transpose(0, 1)?.contiguous()?, self.padding, 1, 1, 1)?
            .transpose(0, 1)?
            .contiguous()?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Stride-1 conv2d with an odd square kernel and `kernel/2` zero padding (output size =
/// input size). On the CPU its backward pass is the fast one; elsewhere it is candle's.
pub fn conv_same(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let padding = w.dim(2)? / 2;
    if !x.device().is_cpu() {
        return Ok(x.conv2d(w, padding, 1, 1, 1)?);
    }
    Ok(x.contiguous()?
        .apply_op2(&w.contiguous()?, SameConv { padding })?)
}
