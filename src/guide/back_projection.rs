//! Super-resolution's consistency step: iterative back-projection (Irani and Peleg), so
//! that the output, area-downsampled, gives the input back.
//!
//! Each round upsamples what the downsampled output still misses, bilinearly so the
//! corrections stay smooth; a last round spreads the remainder evenly over each block,
//! which makes every block's mean exact before rounding.

use image::RgbImage;

/// Smooth rounds before the exact one.
const ROUNDS: usize = 8;

/// One channel-interleaved float image.
struct Plane {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl Plane {
    fn from_rgb(img: &RgbImage) -> Self {
        Plane {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.as_raw().iter().map(|&v| v as f32).collect(),
        }
    }

    fn at(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * 3 + c]
    }

    /// Mean of every `f × f` block.
    fn area_downsample(&self, f: usize) -> Plane {
        let (w, h) = (self.width / f, self.height / f);
        let mut data = vec![0f32; w * h * 3];
        for y in 0..h * f {
            for x in 0..w * f {
                for c in 0..3 {
                    data[((y / f) * w + x / f) * 3 + c] += self.at(x, y, c);
                }
            }
        }
        let n = (f * f) as f32;
        data.iter_mut().for_each(|v| *v /= n);
        Plane {
            width: w,
            height: h,
            data,
        }
    }

    /// Bilinear sample at pixel-centre coordinates (`u`, `v`), clamped at the edges.
    fn bilinear(&self, u: f32, v: f32, c: usize) -> f32 {
        let u = u.clamp(0.0, (self.width - 1) as f32);
        let v = v.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (u.floor() as usize, v.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (a, b) = (u - x0 as f32, v - y0 as f32);
        let top = self.at(x0, y0, c) * (1.0 - a) + self.at(x1, y0, c) * a;
        let bottom = self.at(x0, y1, c) * (1.0 - a) + self.at(x1, y1, c) * a;
        top * (1.0 - b) + bottom * b
    }
}

/// Adjusts `out` (`scale` × the input's size) until its area-downsample matches `input`.
pub fn back_project(out: &mut RgbImage, input: &RgbImage, scale: u32) {
    let f = scale as usize;
    let target = Plane::from_rgb(input);
    let mut img = Plane::from_rgb(out);
    for round in 0..=ROUNDS {
        let down = img.area_downsample(f);
        let miss = Plane {
            width: down.width,
            height: down.height,
            data: target
                .data
                .iter()
                .zip(&down.data)
                .map(|(t, d)| t - d)
                .collect(),
        };
        let smooth = round < ROUNDS;
        for y in 0..img.height {
            for x in 0..img.width {
                let (u, v) = (
                    (x as f32 + 0.5) / f as f32 - 0.5,
                    (y as f32 + 0.5) / f as f32 - 0.5,
                );
                for c in 0..3 {
                    let fix = if smooth {
                        miss.bilinear(u, v, c)
                    } else {
                        miss.at(x / f, y / f, c)
                    };
                    img.data[(y * img.width + x) * 3 + c] += fix;
                }
            }
        }
    }
    for (o, v) in out.iter_mut().zip(&img.data) {
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::{area_downsample, psnr};

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
