//! Distortion measures on 8-bit RGB images: the one PSNR every part of ddn reports.

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

/// PSNR over the pixels where `keep` is true (peak 255); infinity when they agree there.
pub fn masked_psnr(a: &RgbImage, b: &RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "images of different sizes");
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (x, y, p) in a.enumerate_pixels() {
        if keep(x, y) {
            let q = b.get_pixel(x, y);
            sum += (0..3)
                .map(|c| (p[c] as f64 - q[c] as f64).powi(2))
                .sum::<f64>();
            n += 3;
        }
    }
    10.0 * (255.0f64.powi(2) / (sum / n.max(1) as f64)).log10()
}
