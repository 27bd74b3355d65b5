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
