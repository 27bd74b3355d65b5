//! Targets by quality: `--psnr` gives the smallest file that reaches a PSNR, and
//! `-q/--quality` a fixed trade-off whose files grow with the quality.

mod common;

use ddn::codec::quality::decoded_psnr;
use ddn::codec::{decode, encode, EncodeOptions, Rate};
use ddn::error::Error;
use ddn::io::SourceImage;

fn source() -> SourceImage {
    SourceImage {
        rgb: common::test_image(96, 64, 2),
        grey: false,
        had_alpha: false,
    }
}

fn coded(rate: Rate) -> Result<(Vec<u8>, f64), Error> {
    let model = common::tiny_model(3);
    let src = source();
    let bytes = encode(
        &model,
        &src,
        EncodeOptions {
            rate,
            tile: 32,
            ..EncodeOptions::default()
        },
    )?;
    let image = decode(&model, &bytes, None)?.image.to_rgb8();
    Ok((bytes, decoded_psnr(&src, &image)))
}

#[test]
fn a_psnr_target_is_reached_by_a_smaller_file_than_the_best() {
    let (best, best_psnr) = coded(Rate::Lambda(0.0)).unwrap();
    let (coarse, coarse_psnr) = coded(Rate::Lambda(5_000.0)).unwrap();
    assert!(
        coarse_psnr < best_psnr - 0.5,
        "{coarse_psnr} vs {best_psnr}"
    );
    let target = (best_psnr + coarse_psnr) / 2.0;
    let (bytes, psnr) = coded(Rate::Psnr(target)).unwrap();
    assert!(psnr >= target, "{psnr} dB for a target of {target}");
    assert!(
        bytes.len() < best.len(),
        "{} vs {}",
        bytes.len(),
        best.len()
    );
    assert!(
        bytes.len() > coarse.len(),
        "{} vs {}",
        bytes.len(),
        coarse.len()
    );
}

#[test]
fn an_unreachable_psnr_is_refused_naming_the_best() {
    let (_, best_psnr) = coded(Rate::Lambda(0.0)).unwrap();
    match coded(Rate::Psnr(best_psnr + 1.0)) {
        Err(Error::InvalidArgument(msg)) => {
            assert!(msg.contains(&format!("{best_psnr:.2} dB")), "{msg}")
        }
        other => panic!("{:?}", other.map(|(b, p)| (b.len(), p))),
    }
}

#[test]
fn files_grow_and_psnr_rises_with_quality() {
    let mut last = (0, 0.0);
    for q in [10, 40, 70, 100] {
        let (bytes, psnr) = coded(Rate::Quality(q)).unwrap();
        assert!(bytes.len() >= last.0 && psnr >= last.1, "quality {q}");
        last = (bytes.len(), psnr);
    }
    assert!(coded(Rate::Quality(0)).is_err());
}
