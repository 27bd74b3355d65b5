//! Evaluation: metrics against known values, and the residual-VQ baseline.

mod common;

use ddn::eval::metrics::{mse, psnr};
use ddn::eval::rvq::ResidualVq;
use ddn::model::ModelConfig;
use image::{Rgb, RgbImage};

#[test]
fn psnr_known_values() {
    let a = RgbImage::from_pixel(4, 4, Rgb([100, 100, 100]));
    let b = RgbImage::from_pixel(4, 4, Rgb([101, 99, 101]));
    assert_eq!(mse(&a, &b), 1.0);
    assert!((psnr(&a, &b) - 48.130_803_608).abs() < 1e-6);
    let c = RgbImage::from_pixel(4, 4, Rgb([110, 100, 100]));
    // MSE = 100 / 3 → 10·log10(65025·3/100) = 32.9020 dB.
    assert!((psnr(&a, &c) - 32.902_016_2).abs() < 1e-4);
    assert!(psnr(&a, &a).is_infinite());
}

#[test]
fn residual_vq_improves_with_every_level() {
    let schedule = ModelConfig::tiny().schedule();
    let crops: Vec<RgbImage> = (0..6).map(|s| common::test_image(32, 32, s)).collect();
    let vq = ResidualVq::train(&crops, &schedule, 8, 1);
    let image = common::test_image(32, 32, 2);
    let errors: Vec<f64> = (1..=schedule.len()).map(|n| mse(&image, &vq.reconstruct(&image, n))).collect();
    assert!(errors.last() < errors.first(), "{errors:?}");
    let odd = common::test_image(13, 7, 1);
    assert_eq!(vq.reconstruct(&odd, 2).dimensions(), (13, 7));
}
