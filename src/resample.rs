//! Resampling of RGB images: the box filter (mean of each block) and bilinear
//! interpolation between pixel centres. One home for both, shared by the guided walks
//! (back-projection, the inpainting fill, the restoration reports) and the residual-VQ
//! baseline, so that "downsampled" means the same thing everywhere.

use image::{Rgb, RgbImage};

/// An RGB image of floats, pixels in raster order.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[f32; 3]>,
}

impl FloatImage {
    /// A black image.
    pub fn zeros(width: usize, height: usize) -> Self {
        FloatImage {
            width,
            height,
            pixels: vec![[0.0; 3]; width * height],
        }
    }

    /// `img`'s samples, each mapped by `f`.
    pub fn from_rgb_with(img: &RgbImage, f: impl Fn(u8) -> f32) -> Self {
        FloatImage {
            width: img.width() as usize,
            height: img.height() as usize,
            pixels: img.pixels().map(|p| p.0.map(&f)).collect(),
        }
    }

    /// `img`'s samples on the same 0–255 scale.
    pub fn from_rgb(img: &RgbImage) -> Self {
        Self::from_rgb_with(img, f32::from)
    }

    /// Each sample mapped by `f` into an 8-bit image.
    pub fn to_rgb_with(&self, f: impl Fn(f32) -> u8) -> RgbImage {
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            Rgb(self.at(x as usize, y as usize).map(&f))
        })
    }

    /// Rounded and clamped to 0–255.
    pub fn to_rgb(&self) -> RgbImage {
        self.to_rgb_with(|v| v.round().clamp(0.0, 255.0) as u8)
    }

    pub fn at(&self, x: usize, y: usize) -> [f32; 3] {
        self.pixels[y * self.width + x]
    }

    pub fn at_mut(&mut self, x: usize, y: usize) -> &mut [f32; 3] {
        &mut self.pixels[y * self.width + x]
    }

    /// `self − other`, pixel by pixel (the same size).
    pub fn minus(&self, other: &FloatImage) -> FloatImage {
        FloatImage {
            width: self.width,
            height: self.height,
            pixels: self
                .pixels
                .iter()
                .zip(&other.pixels)
                .map(|(p, q)| [0, 1, 2].map(|c| p[c] - q[c]))
                .collect(),
        }
    }

    /// The mean of every `f × f` block; partial blocks at the right and bottom edges are
    /// dropped.
    pub fn area_downsample(&self, f: usize) -> FloatImage {
        let mut out = FloatImage::zeros(self.width / f, self.height / f);
        for y in 0..out.height * f {
            for x in 0..out.width * f {
                let (sum, p) = (out.at_mut(x / f, y / f), self.at(x, y));
                (0..3).for_each(|c| sum[c] += p[c]);
            }
        }
        let n = (f * f) as f32;
        out.pixels.iter_mut().for_each(|p| *p = p.map(|v| v / n));
        out
    }

    /// Bilinear sample at pixel-centre coordinates (`u`, `v`), clamped at the edges.
    pub fn bilinear(&self, u: f32, v: f32) -> [f32; 3] {
        let u = u.clamp(0.0, (self.width - 1) as f32);
        let v = v.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (u.floor() as usize, v.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (a, b) = (u - x0 as f32, v - y0 as f32);
        let (p00, p10, p01, p11) = (
            self.at(x0, y0),
            self.at(x1, y0),
            self.at(x0, y1),
            self.at(x1, y1),
        );
        [0, 1, 2].map(|c| {
            let top = p00[c] * (1.0 - a) + p10[c] * a;
            let bottom = p01[c] * (1.0 - a) + p11[c] * a;
            top * (1.0 - b) + bottom * b
        })
    }

    /// The value at pixel (`x`, `y`) of this image upsampled `f` times, bilinearly between
    /// pixel centres (half-pixel centres, "align corners" off).
    pub fn upsampled_at(&self, f: usize, x: usize, y: usize) -> [f32; 3] {
        let centre = |i: usize| (i as f32 + 0.5) / f as f32 - 0.5;
        self.bilinear(centre(x), centre(y))
    }

    /// This image upsampled `f` times bilinearly ([`FloatImage::upsampled_at`]).
    pub fn upsample(&self, f: usize) -> FloatImage {
        let (width, height) = (self.width * f, self.height * f);
        let pixels = (0..width * height)
            .map(|i| self.upsampled_at(f, i % width, i / width))
            .collect();
        FloatImage {
            width,
            height,
            pixels,
        }
    }
}

/// The mean of every `f × f` block of `img`, rounded; partial edge blocks are dropped.
pub fn area_downsample(img: &RgbImage, f: u32) -> RgbImage {
    FloatImage::from_rgb(img)
        .area_downsample(f as usize)
        .to_rgb()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_downsample_rounds_each_blocks_mean_and_drops_partial_blocks() {
        // 5×3: one whole 2×2 block per pair of columns, the fifth column and third row dropped.
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([(x + 10 * y) as u8, 7, (x * y) as u8]));
        let down = area_downsample(&img, 2);
        assert_eq!(down.dimensions(), (2, 1));
        // Block (0,0): x 0..2, y 0..2 → red 0,1,10,11 = 5.5 → 6; blue 0,0,0,1 = 0.25 → 0.
        assert_eq!(down.get_pixel(0, 0).0, [6, 7, 0]);
        // Block (1,0): red 2,3,12,13 = 7.5 → 8; blue 0,0,2,3 = 1.25 → 1.
        assert_eq!(down.get_pixel(1, 0).0, [8, 7, 1]);
    }

    #[test]
    fn bilinear_upsampling_interpolates_between_centres_and_holds_the_edges() {
        let img = FloatImage {
            width: 2,
            height: 1,
            pixels: vec![[0.0; 3], [8.0; 3]],
        };
        let up = img.upsample(2);
        assert_eq!((up.width, up.height), (4, 2));
        // Centres of the output pixels sit at -0.25, 0.25, 0.75, 1.25 in input pixels;
        // both rows clamp to the one input row.
        let reds: Vec<f32> = up.pixels.iter().map(|p| p[0]).collect();
        assert_eq!(reds, vec![0.0, 2.0, 6.0, 8.0, 0.0, 2.0, 6.0, 8.0]);
    }

    #[test]
    fn upsampling_then_area_downsampling_a_constant_gives_it_back() {
        let img = FloatImage {
            width: 3,
            height: 2,
            pixels: vec![[1.5, 2.0, 3.0]; 6],
        };
        assert_eq!(img.upsample(4).area_downsample(4), img);
    }
}
