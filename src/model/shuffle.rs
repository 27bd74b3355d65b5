//! Pixel shuffles for walks without gradient on the CPU: the same copies as candle's
//! `pixel_shuffle` and `pixel_unshuffle`, row by row on every core. candle's run on one
//! thread through a strided copy, and at a level change a decode waited on them with the
//! other core idle (profiled).

use candle_core::Tensor;
use rayon::prelude::*;

use super::conv::with_f32s;
use crate::error::Result;

/// `[B, C·r², h, w]` → `[B, C, h·r, w·r]`: channel `c·r² + dy·r + dx` at `(y, x)` goes to
/// channel `c` at `(y·r + dy, x·r + dx)`.
pub fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    if r == 1 {
        return Ok(x.clone());
    }
    if !x.device().is_cpu() {
        return Ok(candle_nn::ops::pixel_shuffle(x, r)?);
    }
    let (b, c, h, w) = x.dims4()?;
    let (c_out, w_out) = (c / (r * r), w * r);
    let mut out = vec![0f32; b * c * h * w];
    with_f32s(x, |x| {
        out.par_chunks_mut(w_out)
            .enumerate()
            .for_each(|(row, line)| {
                let (plane, y_out) = (row / (h * r), row % (h * r));
                let (item, channel) = (plane / c_out, plane % c_out);
                let (y, dy) = (y_out / r, y_out % r);
                for dx in 0..r {
                    let from = ((item * c + (channel * r + dy) * r + dx) * h + y) * w;
                    for (v, &s) in line[dx..].iter_mut().step_by(r).zip(&x[from..from + w]) {
                        *v = s;
                    }
                }
            })
    })?;
    Ok(Tensor::from_vec(out, (b, c_out, h * r, w_out), x.device())?)
}

/// `[B, C, h, w]` → `[B, C·r², h/r, w/r]`, the inverse of [`pixel_shuffle`].
pub fn pixel_unshuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    if r == 1 {
        return Ok(x.clone());
    }
    if !x.device().is_cpu() {
        return Ok(candle_nn::ops::pixel_unshuffle(x, r)?);
    }
    let (b, c, h, w) = x.dims4()?;
    let (h_out, w_out) = (h / r, w / r);
    let mut out = vec![0f32; b * c * r * r * h_out * w_out];
    with_f32s(x, |x| {
        out.par_chunks_mut(w_out)
            .enumerate()
            .for_each(|(row, line)| {
                let (plane, y) = (row / h_out, row % h_out);
                let (item, channel) = (plane / (c * r * r), plane % (c * r * r));
                let (c_in, dy, dx) = (channel / (r * r), channel / r % r, channel % r);
                let from = ((item * c + c_in) * h + y * r + dy) * w;
                for (v, &s) in line
                    .iter_mut()
                    .zip(x[from + dx..from + w].iter().step_by(r))
                {
                    *v = s;
                }
            })
    })?;
    Ok(Tensor::from_vec(
        out,
        (b, c * r * r, h_out, w_out),
        x.device(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_shuffles_equal_candles() {
        let x = Tensor::arange(0f32, 2.0 * 12.0 * 6.0 * 4.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 12, 6, 4))
            .unwrap();
        for r in [1, 2] {
            let shuffled = pixel_shuffle(&x, r).unwrap();
            let theirs = candle_nn::ops::pixel_shuffle(&x, r).unwrap();
            assert_eq!(shuffled.dims(), theirs.dims());
            let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values(&shuffled), values(&theirs));
            let back = pixel_unshuffle(&shuffled, r).unwrap();
            let theirs = candle_nn::ops::pixel_unshuffle(&shuffled, r).unwrap();
            assert_eq!(values(&back), values(&theirs));
            assert_eq!(values(&back), values(&x));
        }
    }
}
