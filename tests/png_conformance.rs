//! Every PNG colour type and bit depth, interlaced or not, with and without transparency:
//! each reads as the right 8-bit RGB (low depths and 16 bits scaled to 0–255, palettes
//! expanded), keeps its grey or colour nature, and round-trips through the codec at its
//! size.

mod common;

use ddn::codec::{decode, encode, EncodeOptions, Rate};
use ddn::io::decode_image;
use png::{BitDepth, ColorType};

const W: u32 = 13;
const H: u32 = 7;

/// Sample `i` of pixel (x, y), in 0..2^depth.
fn sample(x: u32, y: u32, i: u32, depth: u32) -> u32 {
    let max = (1u64 << depth) - 1;
    ((x * 7 + y * 13 + i * 29) as u64 * 2_654_435_761 % (max + 1)) as u32
}

fn channels(color: ColorType) -> u32 {
    match color {
        ColorType::Grayscale | ColorType::Indexed => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
    }
}

/// The samples of row `y` at columns `xs`, packed MSB first below 8 bits, big-endian at 16.
fn packed_row(color: ColorType, depth: u32, y: u32, xs: impl Iterator<Item = u32>) -> Vec<u8> {
    let values: Vec<u32> = xs
        .flat_map(|x| (0..channels(color)).map(move |i| sample(x, y, i, depth)))
        // Palette indices stay inside the palette.
        .map(|v| {
            if color == ColorType::Indexed {
                v % PALETTE.len() as u32
            } else {
                v
            }
        })
        .collect();
    match depth {
        16 => values
            .iter()
            .flat_map(|&v| (v as u16).to_be_bytes())
            .collect(),
        8 => values.iter().map(|&v| v as u8).collect(),
        d => {
            let d = d as usize;
            let mut row = vec![0u8; (values.len() * d).div_ceil(8)];
            for (n, &v) in values.iter().enumerate() {
                row[n * d / 8] |= (v as u8) << (8 - d - n * d % 8);
            }
            row
        }
    }
}

/// The raw rows of a `W × H` image, for the encoder.
fn raw_rows(color: ColorType, depth: u32) -> Vec<u8> {
    (0..H)
        .flat_map(|y| packed_row(color, depth, y, 0..W))
        .collect()
}

/// Adam7's passes: (x start, y start, x step, y step).
const ADAM7: [(u32, u32, u32, u32); 7] = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
];

/// The filtered scanlines (filter type 0) of the interlaced image, pass after pass.
fn interlaced_scanlines(color: ColorType, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (x0, y0, dx, dy) in ADAM7 {
        if x0 >= W {
            continue;
        }
        for y in (y0..H).step_by(dy as usize) {
            out.push(0);
            out.extend(packed_row(color, depth, y, (x0..W).step_by(dx as usize)));
        }
    }
    out
}

/// A zlib stream of stored (uncompressed) blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend((body.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// An Adam7-interlaced PNG, written by hand: the `png` crate's encoder writes none.
fn interlaced_png(color: ColorType, depth: u32, transparent: bool) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(W.to_be_bytes());
    ihdr.extend(H.to_be_bytes());
    ihdr.extend([depth as u8, color as u8, 0, 0, 1]);
    chunk(&mut out, b"IHDR", &ihdr);
    if color == ColorType::Indexed {
        chunk(&mut out, b"PLTE", &PALETTE.concat());
        if transparent {
            chunk(&mut out, b"tRNS", &[255, 0, 128, 255]);
        }
    }
    chunk(
        &mut out,
        b"IDAT",
        &zlib_stored(&interlaced_scanlines(color, depth)),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

const PALETTE: [[u8; 3]; 4] = [[255, 0, 0], [0, 128, 0], [10, 20, 250], [200, 200, 40]];

fn png_file(color: ColorType, depth: u32, interlaced: bool, transparent: bool) -> Vec<u8> {
    if interlaced {
        return interlaced_png(color, depth, transparent);
    }
    let mut bytes = Vec::new();
    {
        let mut e = png::Encoder::new(&mut bytes, W, H);
        e.set_color(color);
        e.set_depth(BitDepth::from_u8(depth as u8).unwrap());
        if color == ColorType::Indexed {
            e.set_palette(PALETTE.concat());
            if transparent {
                e.set_trns(vec![255, 0, 128, 255]);
            }
        }
        let mut w = e.write_header().unwrap();
        w.write_image_data(&raw_rows(color, depth)).unwrap();
    }
    bytes
}

/// What pixel (x, y) must read as in 8-bit RGB.
fn expected_rgb(color: ColorType, depth: u32, x: u32, y: u32) -> [u8; 3] {
    let max = ((1u64 << depth) - 1) as f64;
    let scale = |v: u32| (v as f64 * 255.0 / max).round() as u8;
    match color {
        ColorType::Indexed => PALETTE[sample(x, y, 0, depth) as usize % PALETTE.len()],
        ColorType::Grayscale | ColorType::GrayscaleAlpha => [scale(sample(x, y, 0, depth)); 3],
        ColorType::Rgb | ColorType::Rgba => [0, 1, 2].map(|i| scale(sample(x, y, i, depth))),
    }
}

#[test]
fn every_png_colour_type_and_depth_reads_right_and_round_trips() {
    let model = common::tiny_model(7);
    let cases: &[(ColorType, &[u32])] = &[
        (ColorType::Grayscale, &[1, 2, 4, 8, 16]),
        (ColorType::GrayscaleAlpha, &[8, 16]),
        (ColorType::Indexed, &[2, 8]),
        (ColorType::Rgb, &[8, 16]),
        (ColorType::Rgba, &[8, 16]),
    ];
    for &(color, depths) in cases {
        for &depth in depths {
            for interlaced in [false, true] {
                for transparent in [false, true] {
                    if transparent && color != ColorType::Indexed {
                        continue;
                    }
                    let what =
                        format!("{color:?} {depth}-bit interlaced={interlaced} trns={transparent}");
                    let bytes = png_file(color, depth, interlaced, transparent);
                    let source = decode_image(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(source.rgb.dimensions(), (W, H), "{what}");
                    let grey = matches!(color, ColorType::Grayscale | ColorType::GrayscaleAlpha);
                    assert_eq!(source.grey, grey, "{what}");
                    let alpha =
                        matches!(color, ColorType::GrayscaleAlpha | ColorType::Rgba) || transparent;
                    assert_eq!(source.had_alpha, alpha, "{what}");
                    for (x, y, p) in source.rgb.enumerate_pixels() {
                        assert_eq!(
                            p.0,
                            expected_rgb(color, depth, x, y),
                            "{what} at ({x}, {y})"
                        );
                    }
                    let opts = EncodeOptions {
                        rate: Rate::Layers(2),
                        tile: 32,
                        ..EncodeOptions::default()
                    };
                    let coded = encode(&model, &source, opts).unwrap();
                    let back = decode(&model, &coded, None).unwrap().image;
                    assert_eq!((back.width(), back.height()), (W, H), "{what}");
                    assert_eq!(back.color().has_color(), !grey, "{what}");
                }
            }
        }
    }
}
