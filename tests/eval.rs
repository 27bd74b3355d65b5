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
    let errors: Vec<f64> = (1..=schedule.len())
        .map(|n| mse(&image, &vq.reconstruct(&image, n)))
        .collect();
    assert!(errors.last() < errors.first(), "{errors:?}");
    let odd = common::test_image(13, 7, 1);
    assert_eq!(vq.reconstruct(&odd, 2).dimensions(), (13, 7));
}

#[test]
fn ms_ssim_known_values() {
    use ddn::eval::msssim::{ms_ssim, MIN_SIDE};
    let a = common::test_image(200, 180, 1);
    assert!((ms_ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
    // Constant images 100 and 110: every contrast-structure term is exactly 1 and the
    // luminance term is (2·100·110 + C1) / (100² + 110² + C1) with C1 = (0.01·255)².
    let flat = |v| RgbImage::from_pixel(MIN_SIDE, MIN_SIDE, Rgb([v, v, v]));
    let c1 = (0.01f64 * 255.0).powi(2);
    let l = (2.0 * 100.0 * 110.0 + c1) / (100.0f64.powi(2) + 110.0f64.powi(2) + c1);
    let expected = l.powf(0.1333);
    assert!((ms_ssim(&flat(100), &flat(110)).unwrap() - expected).abs() < 1e-9);
    // More distortion, lower score.
    let noisy = |amp: i32| {
        let mut img = a.clone();
        for (i, p) in img.pixels_mut().enumerate() {
            let n = ((i as i32 * 7919) % 17 - 8) * amp / 8;
            p.0 = p.0.map(|v| (v as i32 + n).clamp(0, 255) as u8);
        }
        img
    };
    let mild = ms_ssim(&a, &noisy(4)).unwrap();
    let strong = ms_ssim(&a, &noisy(24)).unwrap();
    assert!(1.0 > mild && mild > strong, "{mild} {strong}");
    assert!(ms_ssim(
        &common::test_image(100, 300, 1),
        &common::test_image(100, 300, 2)
    )
    .is_none());
}

#[test]
fn bd_rate_known_values() {
    use ddn::eval::bdrate::{bd_psnr, bd_rate, psnr_at};
    let anchor = vec![(0.1, 24.0), (0.2, 26.5), (0.4, 29.0), (0.8, 31.5)];
    assert!(bd_rate(&anchor, &anchor).unwrap().abs() < 1e-9);
    // The same quality for 10 % fewer bits everywhere.
    let cheaper: Vec<(f64, f64)> = anchor.iter().map(|&(r, q)| (r * 0.9, q)).collect();
    assert!((bd_rate(&anchor, &cheaper).unwrap() + 10.0).abs() < 1e-6);
    // One dB better everywhere.
    let better: Vec<(f64, f64)> = anchor.iter().map(|&(r, q)| (r, q + 1.0)).collect();
    assert!((bd_psnr(&anchor, &better).unwrap() - 1.0).abs() < 1e-9);
    assert!(bd_rate(&anchor, &better).unwrap() < 0.0);
    assert!((psnr_at(&anchor, 0.2).unwrap() - 26.5).abs() < 1e-9);
    assert!(psnr_at(&anchor, 2.0).is_none());
    let disjoint = vec![(1.0, 40.0), (2.0, 42.0)];
    assert!(bd_rate(&anchor, &disjoint).is_none());
}

#[test]
fn jpeg_anchor_round_trips() {
    let img = common::test_image(64, 48, 5);
    let low = ddn::eval::jpeg::encode(&img, 10).unwrap();
    let high = ddn::eval::jpeg::encode(&img, 90).unwrap();
    assert!(low.len() < high.len());
    let p_low = psnr(&img, &ddn::eval::jpeg::decode(&low).unwrap());
    let p_high = psnr(&img, &ddn::eval::jpeg::decode(&high).unwrap());
    assert!(p_high > p_low && p_high > 30.0, "{p_low} {p_high}");
}
