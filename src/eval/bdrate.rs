//! Bjøntegaard deltas between two rate-distortion curves, with monotone piecewise-cubic
//! (PCHIP) interpolation as in the common CompressAI / VCEG-M33 successors.
//!
//! BD-rate: the mean difference of log-rate over the overlapping quality interval, as a
//! percentage (negative = fewer bits for the same quality). BD-PSNR: the mean quality
//! difference over the overlapping log-rate interval.

/// PCHIP (Fritsch–Carlson) through points sorted by `x`.
struct Pchip {
    x: Vec<f64>,
    y: Vec<f64>,
    d: Vec<f64>,
}

impl Pchip {
    fn new(mut pts: Vec<(f64, f64)>) -> Option<Self> {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts.dedup_by(|a, b| a.0 == b.0);
        if pts.len() < 2 {
            return None;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
        let n = x.len();
        let h: Vec<f64> = (0..n - 1).map(|i| x[i + 1] - x[i]).collect();
        let s: Vec<f64> = (0..n - 1).map(|i| (y[i + 1] - y[i]) / h[i]).collect();
        let mut d = vec![0.0; n];
        if n == 2 {
            d = vec![s[0], s[0]];
        } else {
            for i in 1..n - 1 {
                if s[i - 1] * s[i] > 0.0 {
                    let w1 = 2.0 * h[i] + h[i - 1];
                    let w2 = h[i] + 2.0 * h[i - 1];
                    d[i] = (w1 + w2) / (w1 / s[i - 1] + w2 / s[i]);
                }
            }
            d[0] = end_slope(h[0], h[1], s[0], s[1]);
            d[n - 1] = end_slope(h[n - 2], h[n - 3], s[n - 2], s[n - 3]);
        }
        Some(Pchip { x, y, d })
    }

    /// The integral over `[a, b]` (inside the data range), exact: each cubic Hermite piece
    /// is integrated in closed form.
    fn integral(&self, a: f64, b: f64) -> f64 {
        (0..self.x.len() - 1)
            .map(|i| {
                let (lo, hi) = (a.max(self.x[i]), b.min(self.x[i + 1]));
                if hi <= lo {
                    return 0.0;
                }
                let h = self.x[i + 1] - self.x[i];
                let at = |t: f64| self.piece_antiderivative(i, (t - self.x[i]) / h);
                h * (at(hi) - at(lo))
            })
            .sum()
    }

    /// The antiderivative in `u` of piece `i` (`u` = 0 at its left knot, 1 at its right).
    fn piece_antiderivative(&self, i: usize, u: f64) -> f64 {
        let h = self.x[i + 1] - self.x[i];
        let (u2, u3, u4) = (u * u, u * u * u, u * u * u * u);
        let h00 = u4 / 2.0 - u3 + u;
        let h10 = u4 / 4.0 - 2.0 * u3 / 3.0 + u2 / 2.0;
        let h01 = -u4 / 2.0 + u3;
        let h11 = u4 / 4.0 - u3 / 3.0;
        h00 * self.y[i] + h10 * h * self.d[i] + h01 * self.y[i + 1] + h11 * h * self.d[i + 1]
    }

    fn eval(&self, t: f64) -> f64 {
        let n = self.x.len();
        let i = self.x.partition_point(|&v| v <= t).clamp(1, n - 1) - 1;
        let h = self.x[i + 1] - self.x[i];
        let u = (t - self.x[i]) / h;
        let (h00, h10) = (
            2.0 * u.powi(3) - 3.0 * u * u + 1.0,
            u.powi(3) - 2.0 * u * u + u,
        );
        let (h01, h11) = (-2.0 * u.powi(3) + 3.0 * u * u, u.powi(3) - u * u);
        h00 * self.y[i] + h10 * h * self.d[i] + h01 * self.y[i + 1] + h11 * h * self.d[i + 1]
    }

    fn range(&self) -> (f64, f64) {
        (self.x[0], self.x[self.x.len() - 1])
    }
}

fn end_slope(h0: f64, h1: f64, s0: f64, s1: f64) -> f64 {
    let d = ((2.0 * h0 + h1) * s0 - h0 * s1) / (h0 + h1);
    if d.signum() != s0.signum() {
        0.0
    } else if s0.signum() != s1.signum() && d.abs() > 3.0 * s0.abs() {
        3.0 * s0
    } else {
        d
    }
}

/// Mean of `f - g` over the overlap of their ranges; `None` without overlap.
fn mean_gap(f: &Pchip, g: &Pchip) -> Option<f64> {
    let lo = f.range().0.max(g.range().0);
    let hi = f.range().1.min(g.range().1);
    (hi > lo).then(|| (f.integral(lo, hi) - g.integral(lo, hi)) / (hi - lo))
}

/// BD-rate of `test` against `anchor` in percent; points are `(bpp, psnr)`.
pub fn bd_rate(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Option<f64> {
    let curve = |pts: &[(f64, f64)]| Pchip::new(pts.iter().map(|&(r, q)| (q, r.ln())).collect());
    let gap = mean_gap(&curve(test)?, &curve(anchor)?)?;
    Some((gap.exp() - 1.0) * 100.0)
}

/// BD-PSNR of `test` against `anchor` in dB; points are `(bpp, psnr)`.
pub fn bd_psnr(anchor: &[(f64, f64)], test: &[(f64, f64)]) -> Option<f64> {
    let curve = |pts: &[(f64, f64)]| Pchip::new(pts.iter().map(|&(r, q)| (r.ln(), q)).collect());
    mean_gap(&curve(test)?, &curve(anchor)?)
}

/// A curve's quality at `bpp`, interpolated in log-rate; `None` outside its range.
pub fn psnr_at(points: &[(f64, f64)], bpp: f64) -> Option<f64> {
    let p = Pchip::new(points.iter().map(|&(r, q)| (r.ln(), q)).collect())?;
    let (lo, hi) = p.range();
    let t = bpp.ln();
    (t >= lo && t <= hi).then(|| p.eval(t))
}
