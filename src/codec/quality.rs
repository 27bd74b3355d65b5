//! Targets people choose by instead of a rate: a quality number with a fixed meaning, and
//! the smallest file that reaches a PSNR.

use image::{DynamicImage, RgbImage};

use super::encoder::{walk_with, Job, Trim};
use super::rate_control::{RateProbe, MIN_USEFUL_LAMBDA, NARROW_BRACKET};
use crate::error::{Error, Result};
use crate::io::SourceImage;
use crate::metrics::psnr;

/// λ at quality 100; each 25 quality points below it multiply λ by ten.
const LAMBDA_AT_Q100: f64 = 4.0;
/// A PSNR search is done when a file lands this close above the target (dB).
const PSNR_TOLERANCE: f64 = 0.05;
/// The PSNR search walks at most this many times.
const MAX_PSNR_PROBES: usize = 10;
/// How fast PSNR falls as λ rises on photographs, dB per unit of ln λ: the first step's
/// guess, replaced by the measured slope once there are two probes.
const TYPICAL_DB_PER_LN_LAMBDA: f64 = 1.8;

/// The trade-off λ of quality `q` (1–100): `4 · 10^((100 − q) / 25)`, from 4 at 100 to
/// about 36,000 at 1. The same quality is the same trade-off between squared error and
/// bits on every image, so it looks alike across images, as a JPEG quality does (on
/// Kodak photographs 25 gives about 0.14 bpp, 50 about 0.6 and 75 about 1.4).
pub fn lambda_for_quality(q: u8) -> Result<f64> {
    if !(1..=100).contains(&q) {
        return Err(Error::InvalidArgument(format!(
            "quality {q}: it must be 1 to 100"
        )));
    }
    Ok(LAMBDA_AT_Q100 * 10f64.powf((100.0 - q as f64) / 25.0))
}

/// PSNR of a reconstruction as decoding will give it: on grey for grey sources.
pub fn decoded_psnr(source: &SourceImage, reconstruction: &RgbImage) -> f64 {
    if source.grey {
        let grey = DynamicImage::ImageRgb8(reconstruction.clone()).to_luma8();
        psnr(&source.rgb, &DynamicImage::ImageLuma8(grey).to_rgb8())
    } else {
        psnr(&source.rgb, reconstruction)
    }
}

/// One walk of the PSNR search.
struct Trial {
    lambda: f64,
    psnr: f64,
    file: Vec<u8>,
}

/// The smallest file whose decoded PSNR is at least `target` dB: a search over λ, which
/// PSNR falls with, interpolating PSNR against ln λ.
pub(super) fn fit_psnr(job: Job, layers: usize, target: f64, start_lambda: f64) -> Result<Vec<u8>> {
    if !target.is_finite() || target <= 0.0 {
        return Err(Error::InvalidArgument(format!(
            "a PSNR target of {target} dB: it must be a finite number above zero"
        )));
    }
    let source = job.source;
    let (width, height) = source.rgb.dimensions();
    let trial = |lambda: f64| -> Result<Trial> {
        let mut reconstruction = RgbImage::new(width, height);
        let probe = walk_with(
            job,
            layers,
            lambda,
            Trim::AllKept,
            Some(&mut reconstruction),
        )?;
        // The walk's image is the file's decode, so the output filter is fitted to it.
        let (file, image) =
            match super::filter::fit(&source.rgb, &reconstruction, lambda, usize::MAX) {
                Some((params, filtered)) => (
                    crate::bitstream::with_filter(&probe.file()?, Some(&params))?,
                    filtered,
                ),
                None => (probe.file()?, reconstruction),
            };
        Ok(Trial {
            lambda,
            psnr: decoded_psnr(source, &image),
            file,
        })
    };
    // `reaches`: the largest λ that reached the target; `misses`: the smallest that did not.
    let (mut reaches, mut misses): (Option<Trial>, Option<Trial>) = (None, None);
    let mut lambda = start_lambda;
    let mut last: Option<(f64, f64)> = None;
    for probe in 0..MAX_PSNR_PROBES {
        let t = trial(lambda)?;
        let (l, p) = (t.lambda, t.psnr);
        if p >= target {
            if p - target <= PSNR_TOLERANCE || l == 0.0 {
                return Ok(t.file);
            }
            if reaches.as_ref().is_none_or(|r| l > r.lambda) {
                reaches = Some(t);
            }
        } else {
            if l == 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "a PSNR of {target} dB is above the best this model gives this image, {p:.2} dB"
                )));
            }
            if misses.as_ref().is_none_or(|m| l < m.lambda) {
                misses = Some(t);
            }
        }
        if let (Some(r), Some(m)) = (&reaches, &misses) {
            if m.lambda / r.lambda.max(f64::MIN_POSITIVE) < NARROW_BRACKET {
                break;
            }
        }
        // A first miss tries the best file next: either the target is out of reach, said
        // after two walks, or the search has its bracket.
        lambda = if probe == 0 && p < target {
            0.0
        } else {
            next_lambda(target, (l, p), last, reaches.as_ref(), misses.as_ref())
        };
        last = Some((l, p));
    }
    reaches.map(|r| r.file).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "no file reached {target} dB PSNR in {MAX_PSNR_PROBES} trials"
        ))
    })
}

/// The next λ: between the bracketing trials when there are both (interpolated in
/// ln λ, kept off the ends), else a step along the measured or typical slope.
fn next_lambda(
    target: f64,
    (lambda, psnr): (f64, f64),
    last: Option<(f64, f64)>,
    reaches: Option<&Trial>,
    misses: Option<&Trial>,
) -> f64 {
    if let (Some(r), Some(m)) = (reaches, misses) {
        let lo = if r.lambda > 0.0 {
            r.lambda
        } else {
            m.lambda / 64.0
        };
        let t = ((r.psnr - target) / (r.psnr - m.psnr)).clamp(0.2, 0.8);
        return (lo.ln() + t * (m.lambda.ln() - lo.ln())).exp();
    }
    let slope = last
        .filter(|&(l, p)| l > 0.0 && l != lambda && p != psnr)
        .map(|(l, p)| ((p - psnr) / (lambda / l).ln()).clamp(0.3, 6.0))
        .unwrap_or(TYPICAL_DB_PER_LN_LAMBDA);
    let step = ((psnr - target) / slope).clamp(-(16f64.ln()), 16f64.ln());
    let next = lambda * step.exp();
    if psnr < target && next < MIN_USEFUL_LAMBDA {
        0.0
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_to_a_fixed_lambda() {
        assert_eq!(lambda_for_quality(100).unwrap(), 4.0);
        assert!((lambda_for_quality(75).unwrap() - 40.0).abs() < 1e-9);
        assert!((lambda_for_quality(50).unwrap() - 400.0).abs() < 1e-9);
        assert!(lambda_for_quality(1).unwrap() > lambda_for_quality(2).unwrap());
        assert!(lambda_for_quality(0).is_err());
        assert!(lambda_for_quality(101).is_err());
    }
}
