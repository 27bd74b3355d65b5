//! A region of interest: at the same size, the region comes out better than in a plain
//! encode, and the rest pays for it.

mod common;

use ddn::codec::{decode, encode, encode_with_roi, EncodeOptions, Rate};
use ddn::io::SourceImage;
use ddn::metrics::masked_psnr;
use image::{GrayImage, Luma};

#[test]
fn the_region_is_sharper_than_in_a_plain_encode_of_the_same_size() {
    let model = common::tiny_model(5);
    let source = SourceImage {
        rgb: common::test_image(128, 96, 8),
        grey: false,
        had_alpha: false,
    };
    // The mask is a quarter of the image's size: white over the middle of the image.
    let mask = GrayImage::from_fn(32, 24, |x, y| {
        Luma([if (8..24).contains(&x) && (6..18).contains(&y) {
            255
        } else {
            0
        }])
    });
    let inside = |x: u32, y: u32| (32..96).contains(&x) && (24..72).contains(&y);
    let opts = EncodeOptions {
        rate: Rate::Bpp(0.5),
        tile: 32,
        ..EncodeOptions::default()
    };
    let plain = encode(&model, &source, opts).unwrap();
    let roi = encode_with_roi(&model, &source, opts, &mask).unwrap();
    let budget = 0.5 * 128.0 * 96.0 / 8.0;
    assert!(plain.len() as f64 <= budget && roi.len() as f64 <= budget);
    let plain_img = decode(&model, &plain, None).unwrap().image.to_rgb8();
    let roi_img = decode(&model, &roi, None).unwrap().image.to_rgb8();
    let (pi, ri) = (
        masked_psnr(&source.rgb, &plain_img, inside),
        masked_psnr(&source.rgb, &roi_img, inside),
    );
    let (po, ro) = (
        masked_psnr(&source.rgb, &plain_img, |x, y| !inside(x, y)),
        masked_psnr(&source.rgb, &roi_img, |x, y| !inside(x, y)),
    );
    assert!(ri > pi, "inside: ROI {ri:.2} dB, plain {pi:.2} dB");
    assert!(ro < po, "outside: ROI {ro:.2} dB, plain {po:.2} dB");
}
