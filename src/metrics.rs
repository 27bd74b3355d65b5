//! Distortion measures on 8-bit RGB images.

use image::RgbImage;

/// Mean squared error over every channel of every pixel, on the 0–255 scale.
pub fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "images of different sizes");
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    sum / a.as_raw().len() as f64
}

/// PSNR in dB for 8-bit RGB (peak 255); identical images give infinity.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    10.0 * (255.0f64 * 255.0 / mse(a, b)).log10()
}

/// Box-filter downsampling by an integer factor (partial edge blocks dropped).
pub fn area_downsample(img: &RgbImage, f: u32) -> RgbImage {
    let (w, h) = (img.width() / f, img.height() / f);
    RgbImage::from_fn(w, h, |x, y| {
        let mut sum = [0u32; 3];
        for dy in 0..f {
            for dx in 0..f {
                let p = img.get_pixel(x * f + dx, y * f + dy);
                (0..3).for_each(|c| sum[c] += p[c] as u32);
            }
        }
        let n = f * f;
        image::Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}
