//! Super-resolution's consistency step: iterative back-projection (Irani and Peleg), so
//! that the output, area-downsampled, gives the input back.
//!
//! Each round upsamples what the downsampled output still misses, bilinearly so the
//! corrections stay smooth; a last round spreads the remainder evenly over each block,
//! which makes every block's mean exact before rounding.

use image::RgbImage;

use crate::resample::FloatImage;

/// Smooth rounds before the exact one.
const ROUNDS: usize = 8;

/// Adjusts `out` (`scale` × the input's size) until its area-downsample matches `input`.
pub fn back_project(out: &mut RgbImage, input: &RgbImage, scale: u32) {
    let f = scale as usize;
    let target = FloatImage::from_rgb(input);
    let mut img = FloatImage::from_rgb(out);
    for round in 0..=ROUNDS {
        let miss = target.minus(&img.area_downsample(f));
        let smooth = round < ROUNDS;
        for y in 0..img.height {
            for x in 0..img.width {
                let fix = if smooth {
                    miss.upsampled_at(f, x, y)
                } else {
                    miss.at(x / f, y / f)
                };
                let p = img.at_mut(x, y);
                (0..3).for_each(|c| p[c] += fix[c]);
            }
        }
    }
    *out = img.to_rgb();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::psnr;
    use crate::resample::area_downsample;

    #[test]
    fn output_downsamples_back_to_the_input() {
        let mut rng = crate::rng::Rng::new(3);
        let input = RgbImage::from_fn(12, 9, |x, y| {
            image::Rgb([(40 + x * 15) as u8, (30 + y * 20) as u8, 128])
        });
        // A plausible but wrong guess: a darker, noisy copy.
        let mut out = RgbImage::from_fn(48, 36, |x, y| {
            let p = input.get_pixel(x / 4, y / 4);
            image::Rgb(p.0.map(|v| (v as f64 * 0.7 + rng.range(0.0, 40.0)) as u8))
        });
        assert!(psnr(&input, &area_downsample(&out, 4)) < 30.0);
        back_project(&mut out, &input, 4);
        let after = psnr(&input, &area_downsample(&out, 4));
        assert!(after > 45.0, "{after}");
    }
}
