//! Evaluation: metrics against known values, and the residual-VQ baseline.

mod common;

use ddn::eval::rvq::ResidualVq;
use ddn::metrics::{mse, psnr};
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

/// A published pair of curves (x265 at two presets, the usage example of the FAU-LMS
/// `bjontegaard` package, which matches the JCT-VC PCHIP spreadsheet), and the BD figures
/// that package's PCHIP gives for it (version 1.3.0: −4.417485 %, +0.119693 dB).
#[test]
fn bd_rate_matches_the_reference_implementation_on_published_curves() {
    use ddn::eval::bdrate::{bd_psnr, bd_rate};
    let anchor = [
        (9487.76, 40.037),
        (4593.60, 38.615),
        (2486.44, 36.845),
        (1358.24, 34.851),
    ];
    let test = [
        (9787.80, 40.121),
        (4469.00, 38.651),
        (2451.52, 36.970),
        (1356.24, 34.987),
    ];
    let rate = bd_rate(&anchor, &test).unwrap();
    assert!((rate - -4.417485).abs() < 5e-6, "{rate}");
    let psnr = bd_psnr(&anchor, &test).unwrap();
    assert!((psnr - 0.119693).abs() < 5e-7, "{psnr}");
}

#[test]
fn bd_rate_edge_cases() {
    use ddn::eval::bdrate::{bd_rate, psnr_at};
    let anchor = vec![(0.1, 24.0), (0.2, 26.5), (0.4, 29.0), (0.8, 31.5)];
    assert!(bd_rate(&anchor, &anchor).unwrap().abs() < 1e-9);
    assert!((psnr_at(&anchor, 0.2).unwrap() - 26.5).abs() < 1e-9);
    assert!(psnr_at(&anchor, 2.0).is_none());
    let disjoint = vec![(1.0, 40.0), (2.0, 42.0)];
    assert!(bd_rate(&anchor, &disjoint).is_none());
}
