//! The model built into the binary loads and codes a real photo well.

use candle_core::Device;
use ddn::codec::{decode, encode, EncodeOptions, Rate};
use ddn::io::SourceImage;
use ddn::metrics::psnr;
use ddn::model::{model_id, Model, DEFAULT_MODEL};

/// The built-in model, and the kodim23 crop of `samples/` as the encoder takes it.
fn model_and_sample() -> (Model, SourceImage) {
    let model = Model::from_bytes(DEFAULT_MODEL, &Device::Cpu).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/kodim23-crop.png");
    let source = SourceImage {
        rgb: image::open(path).unwrap().to_rgb8(),
        grey: false,
        had_alpha: false,
    };
    (model, source)
}

#[test]
fn built_in_model_codes_a_sample_photo() {
    let (model, source) = model_and_sample();
    assert_eq!(model.id, model_id(DEFAULT_MODEL));
    let rgb = source.rgb.clone();
    let mut last = 0.0;
    for layers in [2, 8, 13, 16, 19, 22] {
        let opts = EncodeOptions {
            rate: Rate::Layers(layers),
            ..EncodeOptions::default()
        };
        let bytes = encode(&model, &source, opts).unwrap();
        let quality = psnr(&rgb, &decode(&model, &bytes, None).unwrap().image.to_rgb8());
        assert!(quality > last, "{layers} layers: {quality} dB after {last}");
        last = quality;
    }
    // Measured 43.11 dB with all 22 layers of model v7 when it shipped (every cell its
    // nearest candidate); v6 gave 42.55 dB (6.10 bpp), v5 42.3 dB, v4 42.2 dB.
    assert!(last > 42.0, "{last}");
}

#[test]
fn tuning_for_ssim_gives_the_coarse_levels_more_of_the_rate() {
    use ddn::bitstream::{layer_bits, read_file};
    use ddn::codec::Tune;
    let (model, source) = model_and_sample();
    // Bits in the layers below full resolution, and in all, at one λ.
    let bits = |tune| {
        let opts = EncodeOptions {
            rate: Rate::Lambda(2_000.0),
            tune,
            ..EncodeOptions::default()
        };
        let file = read_file(&encode(&model, &source, opts).unwrap()).unwrap();
        let per_layer = layer_bits(&file.header);
        let coarse: u64 = (file.header.layers.iter().zip(&per_layer))
            .filter(|(spec, _)| spec.scale_log2 > 0)
            .map(|(_, bits)| bits)
            .sum();
        (coarse, per_layer.iter().sum::<u64>())
    };
    let (psnr_coarse, psnr_all) = bits(Tune::Psnr);
    let (ssim_coarse, ssim_all) = bits(Tune::Ssim);
    assert!(
        ssim_coarse > psnr_coarse,
        "{ssim_coarse} vs {psnr_coarse} bits"
    );
    // Cheaper bits in the coarse levels make a larger file at the same λ.
    assert!(ssim_all > psnr_all, "{ssim_all} vs {psnr_all} bits");
    assert_eq!(Tune::Psnr.lambda_factor(3), 1.0);
    assert_eq!(Tune::Ssim.lambda_factor(0), 1.0);
    assert!((Tune::Ssim.lambda_factor(2) - 0.64).abs() < 1e-6);
}

#[test]
fn the_output_filter_is_fitted_and_applied_as_the_spec_says() {
    use ddn::bitstream::{read_file, with_filter};
    use ddn::codec::filter::filter_image;
    let (model, source) = model_and_sample();
    let rgb = source.rgb.clone();
    let budget = (0.5 * (rgb.width() * rgb.height()) as f64 / 8.0) as usize;
    let opts = EncodeOptions {
        rate: Rate::Bpp(0.5),
        ..EncodeOptions::default()
    };
    let bytes = encode(&model, &source, opts).unwrap();
    assert!(bytes.len() <= budget);
    let params = read_file(&bytes)
        .unwrap()
        .filter
        .expect("a filter pays at 0.5 bpp");
    // The decode is the unfiltered decode, filtered; and the filter raises the PSNR.
    let plain = with_filter(&bytes, None).unwrap();
    let unfiltered = decode(&model, &plain, None).unwrap().image.to_rgb8();
    let decoded = decode(&model, &bytes, None).unwrap().image.to_rgb8();
    assert_eq!(decoded, filter_image(&params, &unfiltered));
    assert!(psnr(&rgb, &decoded) > psnr(&rgb, &unfiltered) + 0.02);
    // Fewer layers than the file codes: no filter.
    let n = read_file(&bytes).unwrap().header.layers.len();
    let partial = decode(&model, &bytes, Some(n - 1)).unwrap().image.to_rgb8();
    assert_eq!(
        partial,
        decode(&model, &plain, Some(n - 1)).unwrap().image.to_rgb8()
    );
}
