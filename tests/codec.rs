//! The codec end to end with a tiny model: round trips, rate control, determinism,
//! truncation, odd sizes, grey and alpha.

mod common;

use ddn::bitstream::{read_file, write_file};
use ddn::codec::{decode, encode, EncodeOptions, Rate};
use ddn::io::SourceImage;
use ddn::Error;
use image::{DynamicImage, GenericImageView};

fn source(width: u32, height: u32) -> SourceImage {
    SourceImage {
        rgb: common::test_image(width, height, 4),
        grey: false,
        had_alpha: false,
    }
}

fn layers(n: usize) -> EncodeOptions {
    EncodeOptions {
        rate: Rate::Layers(n),
        tile: 16,
        ..EncodeOptions::default()
    }
}

#[test]
fn round_trip_keeps_size_and_the_decoder_follows_the_coded_symbols() {
    let model = common::tiny_model(1);
    let src = source(37, 21);
    let bytes = encode(&model, &src, layers(4)).unwrap();
    let file = read_file(&bytes).unwrap();
    assert_eq!((file.header.width, file.header.height), (37, 21));
    assert_eq!(file.header.layers.len(), 4);
    assert_eq!(file.header.model_id, model.id);
    // The symbols read back write the same bytes.
    assert_eq!(write_file(&file.header, &file.layers).unwrap(), bytes);
    let decoded = decode(&model, &bytes, None).unwrap();
    assert_eq!(decoded.image.dimensions(), (37, 21));
    assert_eq!(decoded.layers_decoded, 4);
    assert!(decoded.truncation.is_none());
    // Another index in one cell of the last layer changes the decoded image: the decoder
    // replays what the file says, not something of its own.
    let mut layers_changed = file.layers.clone();
    let last = layers_changed.last_mut().unwrap();
    let k = file.header.layers.last().unwrap().k;
    last[0] = (last[0] + 1) % k;
    let changed = write_file(&file.header, &layers_changed).unwrap();
    let other = decode(&model, &changed, None).unwrap();
    assert_ne!(other.image, decoded.image);
}

#[test]
fn encoding_is_deterministic() {
    let model = common::tiny_model(2);
    let src = source(40, 24);
    assert_eq!(
        encode(&model, &src, layers(4)).unwrap(),
        encode(&model, &src, layers(4)).unwrap()
    );
}

#[test]
fn odd_sizes_round_trip() {
    let model = common::tiny_model(3);
    for (w, h) in [(1, 1), (17, 99), (3, 2), (64, 1)] {
        let bytes = encode(&model, &source(w, h), layers(2)).unwrap();
        let decoded = decode(&model, &bytes, None).unwrap();
        assert_eq!(decoded.image.dimensions(), (w, h));
    }
}

#[test]
fn bpp_target_gives_the_largest_file_that_fits() {
    let model = common::tiny_model(4);
    // Large enough that the file size moves smoothly with λ.
    let src = source(128, 128);
    let pixels = 128.0 * 128.0;
    let rate = |rate| EncodeOptions {
        rate,
        tile: 32,
        ..EncodeOptions::default()
    };
    let best = encode(&model, &src, rate(Rate::Lambda(0.0))).unwrap().len();
    for fraction in [0.3, 0.5, 0.8] {
        let budget = (best as f64 * fraction).floor();
        let bytes = encode(&model, &src, rate(Rate::Bpp(budget * 8.0 / pixels))).unwrap();
        let len = bytes.len() as f64;
        assert!(len <= budget, "{len} bytes for a budget of {budget}");
        assert!(len >= 0.9 * budget, "{len} bytes for a budget of {budget}");
        assert!(decode(&model, &bytes, None).is_ok());
    }
    // A budget above the best file gives the best file.
    let roomy = encode(
        &model,
        &src,
        rate(Rate::Bpp(2.0 * best as f64 * 8.0 / pixels)),
    )
    .unwrap();
    assert_eq!(roomy.len(), best);
    assert!(matches!(
        encode(&model, &src, rate(Rate::Bpp(0.0001))),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_larger_lambda_gives_a_smaller_file() {
    let model = common::tiny_model(4);
    let src = source(64, 48);
    let sizes: Vec<usize> = [0.0, 100.0, 1e4, 1e9]
        .iter()
        .map(|&l| {
            let opts = EncodeOptions {
                rate: Rate::Lambda(l),
                tile: 16,
                ..EncodeOptions::default()
            };
            encode(&model, &src, opts).unwrap().len()
        })
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert!(sizes[0] > sizes[3], "{sizes:?}");
    // At an enormous λ every cell keeps; only the first layer is left, all keep.
    let file = read_file(
        &encode(
            &model,
            &src,
            EncodeOptions {
                rate: Rate::Lambda(1e12),
                tile: 16,
                ..EncodeOptions::default()
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(file.layers.len(), 1);
    assert!(file.layers[0].iter().all(|&s| s == file.header.layers[0].k));
}

#[test]
fn decoding_fewer_layers_equals_decoding_a_truncated_file() {
    let model = common::tiny_model(5);
    let bytes = encode(&model, &source(32, 32), layers(4)).unwrap();
    let full = read_file(&bytes).unwrap();
    let two = decode(&model, &bytes, Some(2)).unwrap();
    // Cut the file right after layer 1's last byte.
    let bits: u64 = ddn::bitstream::layer_bits(&full.header)[..2].iter().sum();
    let cut = full.header.encoded_len() + bits.div_ceil(8) as usize;
    let truncated = decode(&model, &bytes[..cut], None).unwrap();
    assert_eq!(truncated.layers_decoded, 2);
    assert_eq!(truncated.truncation.unwrap().coded, 4);
    assert_eq!(two.image, truncated.image);
}

#[test]
fn every_truncation_decodes_or_fails_cleanly() {
    let model = common::tiny_model(6);
    let bytes = encode(&model, &source(20, 12), layers(4)).unwrap();
    let header_len = read_file(&bytes).unwrap().header.encoded_len();
    for len in header_len..bytes.len() {
        match decode(&model, &bytes[..len], None) {
            Ok(d) => assert_eq!(d.image.dimensions(), (20, 12)),
            Err(e) => assert!(matches!(e, Error::NoCompleteLayer { .. }), "{e}"),
        }
    }
}

#[test]
fn another_model_is_refused_naming_both_ids() {
    let a = common::tiny_model(7);
    let b = common::tiny_model(8);
    let bytes = encode(&a, &source(16, 16), layers(2)).unwrap();
    match decode(&b, &bytes, None) {
        Err(Error::ModelMismatch { file, model }) => {
            assert_eq!((file, model), (a.id, b.id));
            let msg = Error::ModelMismatch { file, model }.to_string();
            assert!(msg.contains(&a.id.to_string()) && msg.contains(&b.id.to_string()));
        }
        other => panic!("expected a model mismatch, got {:?}", other.err()),
    }
}

fn png_bytes(image: DynamicImage) -> Vec<u8> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[test]
fn grey_sources_decode_to_grey() {
    let model = common::tiny_model(9);
    let grey = DynamicImage::ImageRgb8(common::test_image(24, 16, 1)).to_luma8();
    let src = ddn::io::decode_image(&png_bytes(DynamicImage::ImageLuma8(grey))).unwrap();
    assert!(src.grey && !src.had_alpha);
    let rgb = src.rgb.get_pixel(5, 5);
    assert!(rgb[0] == rgb[1] && rgb[1] == rgb[2]);
    let bytes = encode(&model, &src, layers(3)).unwrap();
    assert!(read_file(&bytes).unwrap().header.grey);
    let decoded = decode(&model, &bytes, None).unwrap();
    assert!(matches!(decoded.image, DynamicImage::ImageLuma8(_)));
}

#[test]
fn alpha_is_reported_and_dropped() {
    let rgba = DynamicImage::ImageRgb8(common::test_image(8, 8, 2)).to_rgba8();
    let src = ddn::io::decode_image(&png_bytes(DynamicImage::ImageRgba8(rgba))).unwrap();
    assert!(src.had_alpha && !src.grey);
    assert_eq!(
        src.rgb.get_pixel(3, 3),
        common::test_image(8, 8, 2).get_pixel(3, 3)
    );
}

#[test]
fn unreadable_images_are_clear_errors() {
    assert!(matches!(ddn::io::decode_image(&[]), Err(Error::EmptyInput)));
    assert!(matches!(
        ddn::io::decode_image(b"not an image at all"),
        Err(Error::ImageDecode(_))
    ));
    // A PNG signature with a broken body.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 0]);
    assert!(ddn::io::decode_image(&png).is_err());
}
