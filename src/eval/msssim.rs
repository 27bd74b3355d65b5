//! MS-SSIM on RGB (Wang, Simoncelli & Bovik 2003): 5 scales, an 11×11 Gaussian window
//! with σ = 1.5 applied without padding, 2×2 average pooling between scales, the standard
//! weights, computed per channel and averaged over R, G and B.

use image::RgbImage;

const WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;
const PEAK: f64 = 255.0;

/// One channel as `f64` rows.
#[derive(Clone)]
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f64>,
}

impl Plane {
    fn channel(img: &RgbImage, c: usize) -> Self {
        Plane {
            w: img.width() as usize,
            h: img.height() as usize,
            v: img.pixels().map(|p| p[c] as f64).collect(),
        }
    }

    fn map2(&self, other: &Plane, f: impl Fn(f64, f64) -> f64) -> Plane {
        Plane {
            w: self.w,
            h: self.h,
            v: self
                .v
                .iter()
                .zip(&other.v)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }

    /// Separable Gaussian blur, "valid" (no padding).
    fn blur(&self, g: &[f64]) -> Plane {
        let n = g.len();
        let w1 = self.w - n + 1;
        let mut tmp = vec![0.0; w1 * self.h];
        for y in 0..self.h {
            for x in 0..w1 {
                tmp[y * w1 + x] = (0..n).map(|i| g[i] * self.v[y * self.w + x + i]).sum();
            }
        }
        let h1 = self.h - n + 1;
        let mut out = vec![0.0; w1 * h1];
        for y in 0..h1 {
            for x in 0..w1 {
                out[y * w1 + x] = (0..n).map(|i| g[i] * tmp[(y + i) * w1 + x]).sum();
            }
        }
        Plane {
            w: w1,
            h: h1,
            v: out,
        }
    }

    /// 2×2 average pooling (odd edges dropped).
    fn pool(&self) -> Plane {
        let (w, h) = (self.w / 2, self.h / 2);
        let mut v = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let at = |dy: usize, dx: usize| self.v[(2 * y + dy) * self.w + 2 * x + dx];
                v.push((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4.0);
            }
        }
        Plane { w, h, v }
    }
}

fn gaussian() -> Vec<f64> {
    let c = (WINDOW / 2) as f64;
    let g: Vec<f64> = (0..WINDOW)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| v / s).collect()
}

/// Mean luminance term and mean contrast-structure term of SSIM at one scale.
fn ssim_terms(x: &Plane, y: &Plane, g: &[f64]) -> (f64, f64) {
    let (c1, c2) = ((K1 * PEAK).powi(2), (K2 * PEAK).powi(2));
    let mx = x.blur(g);
    let my = y.blur(g);
    let sxx = x.map2(x, |a, b| a * b).blur(g);
    let syy = y.map2(y, |a, b| a * b).blur(g);
    let sxy = x.map2(y, |a, b| a * b).blur(g);
    let n = mx.v.len();
    let (mut l_sum, mut cs_sum) = (0.0, 0.0);
    for i in 0..n {
        let (ux, uy) = (mx.v[i], my.v[i]);
        let vx = sxx.v[i] - ux * ux;
        let vy = syy.v[i] - uy * uy;
        let cov = sxy.v[i] - ux * uy;
        l_sum += (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1);
        cs_sum += (2.0 * cov + c2) / (vx + vy + c2);
    }
    (l_sum / n as f64, cs_sum / n as f64)
}

/// Smallest side MS-SSIM accepts: the window must fit at the fifth scale.
pub const MIN_SIDE: u32 = (WINDOW * 16) as u32;

/// RGB MS-SSIM in [0, 1]; `None` when a side is under [`MIN_SIDE`].
pub fn ms_ssim(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    assert_eq!(a.dimensions(), b.dimensions());
    if a.width() < MIN_SIDE || a.height() < MIN_SIDE {
        return None;
    }
    let g = gaussian();
    let per_channel = (0..3).map(|c| {
        let (mut x, mut y) = (Plane::channel(a, c), Plane::channel(b, c));
        let mut value = 1.0;
        for (scale, w) in WEIGHTS.iter().enumerate() {
            let (l, cs) = ssim_terms(&x, &y, &g);
            let term = if scale == WEIGHTS.len() - 1 {
                l * cs
            } else {
                cs
            };
            value *= term.max(0.0).powf(*w);
            x = x.pool();
            y = y.pool();
        }
        value
    });
    Some(per_channel.sum::<f64>() / 3.0)
}
