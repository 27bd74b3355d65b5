//! A "same" convolution (stride 1, odd square kernel, zero padding) that runs at GEMM
//! speed on the CPU.
//!
//! candle's CPU conv2d spends most of its time in a single-threaded im2col copy and its
//! backward pass uses a slow direct `conv_transpose2d` (docs/experiments.md, "Encoder and
//! decoder speed", has the profile). Here every pass is im2col (whole shifted rows, so
//! plain `memcpy`s) and GEMM: forward `Y = W·col(X)` band by band of rows so each band's
//! im2col stays in cache, weights `dW = Σ dY·col(X)ᵀ` per image, input `dX` = the same
//! convolution of `dY` with the kernel transposed and flipped.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{gemm, gemm_to_rows, Threads};
use crate::error::Result;

struct SameConv;

/// The dimensions of one same-convolution.
#[derive(Debug, Clone, Copy)]
struct ConvDims {
    batch: usize,
    c_in: usize,
    c_out: usize,
    height: usize,
    width: usize,
    kernel: usize,
}

impl ConvDims {
    fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    fn taps(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("same-conv2d needs contiguous inputs".into()))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// `f` of a CPU tensor's floats, read where they lie (copied only if not contiguous).
pub(super) fn with_f32s<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => Ok(f(contiguous_f32(cpu, layout)?)),
        _ => Err(candle_core::Error::Msg(
            "a CPU kernel given a tensor off the CPU".into(),
        )),
    }
}

/// Floats of one band's im2col block (4 MiB): small enough to stay in cache between being
/// written and being read by the GEMM (a whole image's block is hundreds of MB), large
/// enough for the GEMM to run near its peak. Chosen with the `flops` bench
/// (docs/experiments.md, "Encoder and decoder speed").
const BAND_FLOATS: usize = 1 << 20;

/// Output rows per band of [`forward`].
fn band_rows(d: ConvDims) -> usize {
    (BAND_FLOATS / (d.taps() * d.width).max(1)).clamp(1, d.height)
}

/// A conv's input: `[B, C, h, w]`, or the channel concatenation of two such blocks read
/// where they lie, without building it.
#[derive(Clone, Copy)]
struct Channels<'a> {
    first: &'a [f32],
    first_channels: usize,
    /// Channels `first_channels..` (empty when `first` holds them all).
    second: &'a [f32],
}

impl<'a> Channels<'a> {
    fn one(x: &'a [f32], d: ConvDims) -> Self {
        Channels {
            first: x,
            first_channels: d.c_in,
            second: &[],
        }
    }

    /// Channel `c` of item `b`.
    fn plane(&self, d: ConvDims, b: usize, c: usize) -> &'a [f32] {
        let p = d.pixels();
        if c < self.first_channels {
            &self.first[(b * self.first_channels + c) * p..][..p]
        } else {
            let rest = d.c_in - self.first_channels;
            &self.second[(b * rest + c - self.first_channels) * p..][..p]
        }
    }
}

/// The im2col matrix of item `b`'s output rows `rows`, `[taps, rows.len() · width]`, into
/// `col`: row `(c, ky, kx)` holds channel `c` shifted by `(ky − p, kx − p)`, zero outside.
/// Each element is written once, in order (zeros only where the shift leaves the image):
/// zero-filling the block first doubled its memory traffic.
fn im2col_rows(
    input: Channels,
    b: usize,
    d: ConvDims,
    rows: std::ops::Range<usize>,
    col: &mut Vec<f32>,
) {
    let (h, w, k) = (d.height, d.width, d.kernel);
    let pad = k / 2;
    col.clear();
    col.reserve(d.taps() * rows.len() * w);
    let zeros = vec![0f32; w];
    for tap in 0..d.taps() {
        let (c, ky, kx) = (tap / (k * k), tap / k % k, tap % k);
        let plane = input.plane(d, b, c);
        let x0 = pad.saturating_sub(kx).min(w);
        let x1 = (w + pad).saturating_sub(kx).clamp(x0, w);
        for y in rows.clone() {
            let sy = y + ky;
            if sy < pad || sy - pad >= h || x0 == x1 {
                col.extend_from_slice(&zeros);
                continue;
            }
            let src = (sy - pad) * w + x0 + kx - pad;
            col.extend_from_slice(&zeros[..x0]);
            col.extend_from_slice(&plane[src..src + (x1 - x0)]);
            col.extend_from_slice(&zeros[x1..]);
        }
    }
}

/// The output buffer of [`forward`], shared by the threads that fill its disjoint parts.
struct Output(*mut f32);

// SAFETY: every band writes its own rows of each output plane, which no other band touches.
unsafe impl Sync for Output {}

/// `Y[b] = W · col(X[b]) (+ bias)` for `[B, c_in, h, w]` input and `[c_out, c_in, k, k]`
/// weights, band of rows by band: each band's im2col block and its GEMM on one thread, in
/// cache, the GEMM writing straight into the band's rows of every output plane, and the
/// bias added there while they are in cache (after the product, as a separate add would).
fn forward(
    input: Channels,
    weights: &[f32],
    bias: Option<&[f32]>,
    then: Epilogue,
    d: ConvDims,
) -> Vec<f32> {
    let per_out = d.c_out * d.pixels();
    let rows = band_rows(d);
    let bands = d.height.div_ceil(rows);
    // Not zeroed first: the bands' GEMMs write every element (zeroing a feature map of
    // tens of MB on the calling thread held up both cores, profiled).
    let mut y: Vec<f32> = Vec::with_capacity(d.batch * per_out);
    let out = Output(y.as_mut_ptr());
    (0..d.batch * bands)
        .into_par_iter()
        .for_each_init(Vec::new, |col, i| {
            let (b, y0) = (i / bands, i % bands * rows);
            let band = y0..(y0 + rows).min(d.height);
            let n = band.len() * d.width;
            im2col_rows(input, b, d, band, col);
            let out = &out;
            // SAFETY: rows `co · pixels + y0·width ..+ n` of item `b`, for every output
            // channel `co`, lie inside `y` and belong to this band alone.
            unsafe {
                gemm_to_rows(
                    (d.c_out, n, d.taps()),
                    out.0.add(b * per_out + y0 * d.width),
                    d.pixels(),
                    weights,
                    (d.taps(), 1),
                    col,
                    (n, 1),
                );
                for co in 0..d.c_out {
                    let at = b * per_out + co * d.pixels() + y0 * d.width;
                    let row = std::slice::from_raw_parts_mut(out.0.add(at), n);
                    super::simd::widest(
                        #[inline(always)]
                        || {
                            if let Some(bias) = bias {
                                row.iter_mut().for_each(|v| *v += bias[co]);
                            }
                            then.apply(row, at);
                        },
                    );
                }
            }
        });
    // SAFETY: the bands cover every row of every output plane of every item, and each
    // band's GEMM wrote all of its elements above.
    unsafe { y.set_len(d.batch * per_out) };
    y
}

/// What a coding walk's conv does to its output after the bias, while it is in cache:
/// the same arithmetic as the separate candle op it replaces, so the floats are the same.
#[derive(Clone, Copy)]
enum Epilogue<'a> {
    Nothing,
    /// `v / (1 + e^−v)`, candle's SiLU.
    Silu,
    /// `r + v` with `r` the tensor of the output's shape (a residual connection).
    AddTo(&'a [f32]),
}

impl Epilogue<'_> {
    /// Applies to `row`, which starts at element `at` of the output.
    #[inline(always)]
    fn apply(self, row: &mut [f32], at: usize) {
        match self {
            Epilogue::Nothing => {}
            Epilogue::Silu => row.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp()),
            Epilogue::AddTo(r) => row.iter_mut().zip(&r[at..]).for_each(|(v, &r)| *v += r),
        }
    }
}

/// `dW = Σ_b dY[b] · col(X[b])ᵀ`, `[c_out, c_in·k·k]`.
///
/// Computed as `dWᵀ = Σ_b col(X[b]) · dY[b]ᵀ` from `dY[b]` transposed in parallel: the
/// `gemm` crate runs a row-major product as its transpose and wants that product's left
/// operand column by column, which `dY[b]ᵀ` is and `col(X[b])` is not (it would pack the
/// whole im2col block on one thread through a strided gather). Same products, same
/// blocking along the pixels, so the same floats as `dY · colᵀ` (tested), except where
/// the crate has special kernels for tiny products: those keep the plain product.
fn weight_gradient(x: &[f32], dy: &[f32], d: ConvDims) -> Vec<f32> {
    let tiny = d.taps() * d.c_out <= 256 || d.taps() == 1 || d.c_out == 1;
    weight_gradient_as(x, dy, d, tiny)
}

/// [`weight_gradient`] as the plain product `dY · colᵀ` (`plain`) or as `(col · dYᵀ)ᵀ`.
fn weight_gradient_as(x: &[f32], dy: &[f32], d: ConvDims, plain: bool) -> Vec<f32> {
    let per_out = d.c_out * d.pixels();
    let mut dw = vec![0f32; d.c_out * d.taps()];
    let (mut col, mut dyt) = (Vec::new(), Vec::new());
    for b in 0..d.batch {
        im2col_rows(Channels::one(x, d), b, d, 0..d.height, &mut col);
        let dy = &dy[b * per_out..(b + 1) * per_out];
        if plain {
            let (m, n, k) = (d.c_out, d.taps(), d.pixels());
            gemm(
                (m, n, k),
                &mut dw,
                b > 0,
                dy,
                (k, 1),
                &col,
                (1, k),
                Threads::All,
            );
        } else {
            transpose_into(dy, d.c_out, &mut dyt);
            let (m, n, k) = (d.taps(), d.c_out, d.pixels());
            gemm(
                (m, n, k),
                &mut dw,
                b > 0,
                &col,
                (k, 1),
                &dyt,
                (n, 1),
                Threads::All,
            );
        }
    }
    if plain {
        return dw;
    }
    let mut transposed = Vec::new();
    transpose_into(&dw, d.taps(), &mut transposed);
    transposed
}

/// `dst = srcᵀ` for a row-major `src` of `rows` rows, in parallel blocks of columns.
fn transpose_into(src: &[f32], rows: usize, dst: &mut Vec<f32>) {
    const BLOCK: usize = 256;
    let cols = src.len() / rows.max(1);
    dst.clear();
    dst.resize(src.len(), 0.0);
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(block, out)| {
            let c0 = block * BLOCK;
            for r in 0..rows {
                let row = &src[r * cols + c0..][..out.len() / rows];
                for (i, &v) in row.iter().enumerate() {
                    out[i * rows + r] = v;
                }
            }
        });
}

fn dims(x: &Shape, w: &Shape) -> candle_core::Result<ConvDims> {
    let (batch, c_in, height, width) = x.dims4()?;
    let (c_out, w_in, kh, kw) = w.dims4()?;
    if w_in != c_in || kh != kw || kh % 2 == 0 {
        return Err(candle_core::Error::Msg(format!(
            "same-conv2d: input {x:?} and kernel {w:?} do not fit"
        )));
    }
    Ok(ConvDims {
        batch,
        c_in,
        c_out,
        height,
        width,
        kernel: kh,
    })
}

/// The CPU forward of both conv ops: `x` (s1) by the weights (s2), plus `bias` if given.
fn cpu_conv(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    bias: Option<&[f32]>,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let d = dims(l1.shape(), l2.shape())?;
    if bias.is_some_and(|b| b.len() != d.c_out) {
        return Err(candle_core::Error::Msg(format!(
            "same-conv2d: a bias for each of {} output channels expected",
            d.c_out
        )));
    }
    let x = Channels::one(contiguous_f32(s1, l1)?, d);
    let y = forward(x, contiguous_f32(s2, l2)?, bias, Epilogue::Nothing, d);
    Ok((
        CpuStorage::F32(y),
        Shape::from((d.batch, d.c_out, d.height, d.width)),
    ))
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
        cpu_conv(s1, l1, s2, l2, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // Detached: the backward pass records no graph of its own.
        let flipped = w.detach().transpose(0, 1)?.contiguous()?.flip(&[2, 3])?;
        let dx = conv_same(grad, &flipped).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let d = dims(x.shape(), w.shape())?;
        let dw = with_f32s(x, |x| with_f32s(grad, |dy| weight_gradient(x, dy, d)))??;
        let dw = Tensor::from_vec(dw, w.shape(), w.device())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// [`SameConv`] with a bias per output channel, added inside the conv.
struct BiasedSameConv;

impl CustomOp3 for BiasedSameConv {
    fn name(&self) -> &'static str {
        "same-conv2d-bias"
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
        cpu_conv(s1, l1, s2, l2, Some(contiguous_f32(s3, l3)?))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = SameConv.bwd(x, w, res, grad)?;
        let dbias = grad.sum(3)?.sum(2)?.sum(0)?;
        Ok((dx, dw, Some(dbias)))
    }
}

/// Stride-1 conv2d with an odd square kernel and `kernel/2` zero padding (output size =
/// input size). On the CPU it is im2col + GEMM both ways; elsewhere it is candle's.
pub fn conv_same(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return conv_same_portable(x, w);
    }
    Ok(x.contiguous()?.apply_op2(&w.contiguous()?, SameConv)?)
}

/// [`conv_same`] off the CPU: candle's conv2d forward (im2col and one GEMM on a GPU), with
/// a backward of the same shape as the CPU op's instead of candle's (whose input gradient
/// is a direct `conv_transpose2d` kernel, far from GEMM speed): the input gradient is the
/// same convolution with the kernel flipped, the weight gradient one GEMM per kernel tap.
fn conv_same_portable(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let padding = w.dim(2)? / 2;
    let y = x.detach().conv2d(&w.detach(), padding, 1, 1, 1)?;
    if !x.track_op() && !w.track_op() {
        return Ok(y);
    }
    Ok(y.contiguous()?.apply_op3(x, w, ConvGradients)?)
}

/// Passes the conv's output `y` through unchanged and gives `x` and `w` their gradients
/// (`y.apply_op3(x, w, ConvGradients)`), so the forward stays candle's conv2d.
struct ConvGradients;

impl CustomOp3 for ConvGradients {
    fn name(&self) -> &'static str {
        "same-conv2d-gradients"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        l: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(l)?, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        y: &candle_core::CudaStorage,
        l: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((y.try_clone(l)?, l.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let to_candle = |e: crate::error::Error| candle_core::Error::Msg(e.to_string());
        // Detached: the backward pass records no graph of its own.
        let flipped = w.detach().transpose(0, 1)?.contiguous()?.flip(&[2, 3])?;
        let dx = conv_same_portable(&grad.detach(), &flipped).map_err(to_candle)?;
        let dw = weight_gradient_by_taps(x, &grad.detach(), w.dim(2)?)?;
        Ok((None, Some(dx), Some(dw)))
    }
}

/// `dW[o, i, ky, kx] = Σ dY[b, o, y, x] · X[b, i, y + ky − p, x + kx − p]`: for each tap,
/// one `[C_out, B·h·w] × [B·h·w, C_in]` GEMM against the input shifted by that tap.
fn weight_gradient_by_taps(x: &Tensor, dy: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    let (b, c_in, h, w) = x.dims4()?;
    let c_out = dy.dim(1)?;
    let p = k / 2;
    let padded = x
        .detach()
        .pad_with_zeros(2, p, p)?
        .pad_with_zeros(3, p, p)?;
    let dy = dy
        .transpose(0, 1)?
        .contiguous()?
        .reshape((c_out, b * h * w))?;
    let mut taps = Vec::with_capacity(k * k);
    for ky in 0..k {
        for kx in 0..k {
            let shifted = padded
                .narrow(2, ky, h)?
                .narrow(3, kx, w)?
                .transpose(0, 1)?
                .contiguous()?
                .reshape((c_in, b * h * w))?;
            taps.push(dy.matmul(&shifted.t()?)?);
        }
    }
    Tensor::stack(&taps, 2)?.reshape((c_out, c_in, k, k))
}

/// What [`conv_for_coding`] does to the conv's output.
#[derive(Clone, Copy)]
pub enum Then<'a> {
    Nothing,
    /// SiLU.
    Silu,
    /// `residual + output`.
    AddTo(&'a Tensor),
}

/// [`conv_same_biased`] for walks without gradient (coding), fused: of `a`, or of the
/// channel concatenation of `a` and `b` read where they lie (`[B, C_a, h, w]` and
/// `[B, C_b, h, w]`) instead of copied into one tensor, followed by `then` while the
/// output is in cache. The floats are those of the separate candle ops (tested). Off the
/// CPU it runs those ops.
pub fn conv_for_coding(
    a: &Tensor,
    b: Option<&Tensor>,
    w: &Tensor,
    bias: &Tensor,
    then: Then,
) -> Result<Tensor> {
    if !a.device().is_cpu() {
        let x = match b {
            Some(b) => Tensor::cat(&[a, b], 1)?,
            None => a.clone(),
        };
        let y = conv_same_biased(&x, w, bias)?;
        return Ok(match then {
            Then::Nothing => y,
            Then::Silu => y.silu()?,
            Then::AddTo(r) => (r + y)?,
        });
    }
    let contiguous = |t: Option<&Tensor>| t.map(Tensor::contiguous).transpose();
    let (a, w, bias) = (a.contiguous()?, w.contiguous()?, bias.contiguous()?);
    let b = contiguous(b)?;
    let residual = contiguous(match then {
        Then::AddTo(r) => Some(r),
        _ => None,
    })?;
    let (batch, ca, h, wd) = a.dims4()?;
    let cb = match &b {
        Some(b) if b.dims4()? == (batch, b.dim(1)?, h, wd) => b.dim(1)?,
        Some(b) => {
            return Err(candle_core::Error::Msg(format!(
                "same-conv2d: inputs {:?} and {:?} cannot be concatenated",
                a.shape(),
                b.shape()
            ))
            .into())
        }
        None => 0,
    };
    let d = dims(&Shape::from((batch, ca + cb, h, wd)), w.shape())?;
    if residual
        .as_ref()
        .is_some_and(|r| r.dims() != [d.batch, d.c_out, d.height, d.width])
    {
        return Err(
            candle_core::Error::Msg("same-conv2d: residual of another shape".into()).into(),
        );
    }
    let tensors: Vec<&Tensor> = [
        Some(&a),
        b.as_ref(),
        Some(&w),
        Some(&bias),
        residual.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let f32s = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            candle_core::Storage::Cpu(cpu) => contiguous_f32(cpu, layout),
            _ => Err(candle_core::Error::Msg(
                "same-conv2d: tensors on two devices".into(),
            )),
        })
        .collect::<candle_core::Result<Vec<&[f32]>>>()?;
    let (x, rest) = f32s.split_at(if b.is_some() { 2 } else { 1 });
    let input = Channels {
        first: x[0],
        first_channels: ca,
        second: x.get(1).copied().unwrap_or(&[]),
    };
    let epilogue = match then {
        Then::Nothing => Epilogue::Nothing,
        Then::Silu => Epilogue::Silu,
        Then::AddTo(_) => Epilogue::AddTo(rest[2]),
    };
    let y = forward(input, rest[0], Some(rest[1]), epilogue, d);
    Ok(Tensor::from_vec(
        y,
        (d.batch, d.c_out, d.height, d.width),
        a.device(),
    )?)
}

/// [`conv_same`] plus a bias per output channel (`[c_out]`).
pub fn conv_same_biased(x: &Tensor, w: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        let y = conv_same(x, w)?;
        return Ok(y.broadcast_add(&bias.reshape((1, (), 1, 1))?)?);
    }
    Ok(x.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, BiasedSameConv)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = crate::rng::Rng::new(seed);
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.uniform() as f32 - 0.5).collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn matches_candle_conv2d_forward_and_backward() {
        for (kernel, h, w) in [
            (3, 7, 5),
            (1, 4, 6),
            (5, 6, 9),
            (3, 1, 1),
            (5, 1, 2),
            (5, 3, 1),
        ] {
            let x = Var::from_tensor(&random(&[2, 3, h, w], 1)).unwrap();
            let k = Var::from_tensor(&random(&[4, 3, kernel, kernel], 2)).unwrap();
            let ours = conv_same(x.as_tensor(), k.as_tensor()).unwrap();
            // What runs off the CPU, checked here on the CPU.
            let portable = conv_same_portable(x.as_tensor(), k.as_tensor()).unwrap();
            let theirs = x.conv2d(&k, kernel / 2, 1, 1, 1).unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-5);
            assert_eq!(max_diff(&portable, &theirs), 0.0);

            let probe = random(&[2, 4, h, w], 3);
            let grads = |y: Tensor| (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let (g1, g2, g3) = (grads(ours), grads(theirs), grads(portable));
            for v in [&x, &k] {
                assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-4);
                assert!(max_diff(g3.get(v).unwrap(), g2.get(v).unwrap()) < 1e-4);
            }
        }
    }

    #[test]
    fn the_weight_gradient_has_the_floats_of_the_plain_product() {
        // The model's shapes: taps over and under the GEMM's 512-deep blocks, channel counts
        // that are and are not multiples of the SIMD width, images of several bands.
        for (c_in, c_out, h, w) in [
            (60, 48, 32, 40),
            (67, 64, 16, 16),
            (64, 256, 8, 12),
            (3, 5, 7, 9),
            (3, 16, 6, 7),
        ] {
            let d = ConvDims {
                batch: 2,
                c_in,
                c_out,
                height: h,
                width: w,
                kernel: 3,
            };
            let x = random(&[2, c_in, h, w], 7)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let dy = random(&[2, c_out, h, w], 8)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let ours = weight_gradient(&x, &dy, d);
            let plain = weight_gradient_as(&x, &dy, d, true);
            assert!(ours
                .iter()
                .zip(&plain)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn the_biased_conv_equals_conv_then_add_exactly_and_has_its_gradients() {
        let x = Var::from_tensor(&random(&[2, 3, 9, 7], 4)).unwrap();
        let k = Var::from_tensor(&random(&[4, 3, 3, 3], 5)).unwrap();
        let b = Var::from_tensor(&random(&[4], 6)).unwrap();
        let fused = conv_same_biased(x.as_tensor(), k.as_tensor(), b.as_tensor()).unwrap();
        let apart = conv_same(x.as_tensor(), k.as_tensor())
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, 4, 1, 1)).unwrap())
            .unwrap();
        // The same additions in the same order: coding depends on it bit for bit.
        assert_eq!(max_diff(&fused, &apart), 0.0);
        let probe = random(&[2, 4, 9, 7], 7);
        let grads = |y: Tensor| (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let (g1, g2) = (grads(fused), grads(apart));
        for v in [&x, &k, &b] {
            assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-4);
        }
    }

    #[test]
    fn the_fused_coding_conv_equals_the_separate_ops_exactly() {
        let (a, b) = (random(&[2, 3, 6, 5], 8), random(&[2, 2, 6, 5], 9));
        let (k, bias) = (random(&[4, 5, 3, 3], 10), random(&[4], 11));
        let cat = Tensor::cat(&[&a, &b], 1).unwrap();
        let plain = conv_same_biased(&cat, &k, &bias).unwrap();
        let two = conv_for_coding(&a, Some(&b), &k, &bias, Then::Nothing).unwrap();
        assert_eq!(max_diff(&two, &plain), 0.0);
        let silu = conv_for_coding(&a, Some(&b), &k, &bias, Then::Silu).unwrap();
        assert_eq!(max_diff(&silu, &plain.silu().unwrap()), 0.0);
        let residual = random(&[2, 4, 6, 5], 13);
        let added = conv_for_coding(&cat, None, &k, &bias, Then::AddTo(&residual)).unwrap();
        assert_eq!(max_diff(&added, &(&residual + &plain).unwrap()), 0.0);
        let narrow = random(&[2, 2, 6, 4], 12);
        assert!(conv_for_coding(&a, Some(&narrow), &k, &bias, Then::Nothing).is_err());
    }
}
