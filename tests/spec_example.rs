//! codec-spec.md §11: the worked examples of every format, byte for byte.

use ddn::bitstream::{read_file, write_file, Header, LayerSpec, ModelId, Truncation};

/// §11.1, format 3 (derived from the spec by a separate program).
const EXAMPLE3: [u8; 42] = [
    0x89, 0x44, 0x44, 0x4E, // magic
    0x03, 0x00, // version 3, flags
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x03, 0x00, 0x02, 0x00, 0x02, 0x00, // width, height, tile
    0x02, 0x02, // layer count, run count
    0x01, 0x03, 0x00, 0x01, // run 0: 1 layer, K 3, s 1 + 16·c 0
    0x01, 0x04, 0x00, 0x10, // run 1: 1 layer, K 4, s 0 + 16·c 1
    0x01, 0x01, // segment lengths 1 and 1
    0x47, 0x9E, 0x25, 0xEE, // header CRC
    0x51, // layer 0's segment
    0x70, // layer 1's segment
    0x8A, 0xBC, 0x67, 0x42, // trailer CRC
];

/// §11.2, format 2.
const EXAMPLE2: [u8; 58] = [
    0x89, 0x44, 0x44, 0x4E, // magic
    0x02, 0x00, 0x00, 0x00, // version 2, flags, reserved
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x03, 0x00, 0x02, 0x00, 0x02, 0x00, // width, height, tile
    0x02, 0x00, // layer count, reserved
    0x03, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, // layer 0: K 3, s 1, c 0, 5 bytes
    0x04, 0x00, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, // layer 1: K 4, s 0, c 1, 5 bytes
    0x0A, 0xCB, 0x7B, 0x45, // header CRC
    0x00, 0x50, 0x7F, 0xFC, 0x00, // layer 0's segment
    0x00, 0x6F, 0xFF, 0xFC, 0x00, // layer 1's segment
    0x29, 0x96, 0x93, 0x10, // trailer CRC
];

/// §11.3, format 1.
const EXAMPLE: [u8; 41] = [
    0x89, 0x44, 0x44, 0x4E, // magic
    0x01, 0x00, 0x00, 0x00, // version, flags, reserved
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x03, 0x00, 0x02, 0x00, 0x02, 0x00, // width, height, tile
    0x02, 0x00, // layer count, reserved
    0x03, 0x00, 0x01, 0x00, // layer 0: K 3, s 1, c 0
    0x04, 0x00, 0x00, 0x01, // layer 1: K 4, s 0, c 1
    0x02, 0x6D, 0x08, 0xFA, // header CRC
    0x7C, // payload 0111 1100
    0x0A, 0xCA, 0x91, 0x9F, // trailer CRC
];

fn example_header() -> Header {
    example_header_of(1)
}

fn example_header_of(version: u8) -> Header {
    Header {
        version,
        grey: false,
        model_id: ModelId([0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]),
        width: 3,
        height: 2,
        tile: 2,
        layers: vec![
            LayerSpec {
                k: 3,
                scale_log2: 1,
                cell_log2: 0,
            },
            LayerSpec {
                k: 4,
                scale_log2: 0,
                cell_log2: 1,
            },
        ],
        segments: match version {
            1 => vec![],
            2 => vec![5, 5],
            _ => vec![1, 1],
        },
    }
}

#[test]
fn format3_writer_produces_the_spec_bytes() {
    let mut header = example_header_of(3);
    header.segments.clear();
    let bytes = write_file(&header, &[vec![2, 3], vec![3, 4]]).unwrap();
    assert_eq!(bytes, EXAMPLE3);
    assert_eq!(header.encoded_len(), 22 + 8 + 4, "no segment lengths yet");
}

#[test]
fn format3_reader_recovers_the_spec_symbols() {
    let file = read_file(&EXAMPLE3).unwrap();
    assert_eq!(file.header, example_header_of(3));
    assert_eq!(file.header.encoded_len(), 36);
    assert_eq!(file.layers, vec![vec![2, 3], vec![3, 4]]);
    // Cutting the second segment leaves the first layer.
    let cut = read_file(&EXAMPLE3[..37]).unwrap();
    assert_eq!(cut.layers, vec![vec![2, 3]]);
    assert_eq!(
        cut.truncation,
        Some(Truncation {
            complete: 1,
            coded: 2
        })
    );
}

#[test]
fn format2_writer_produces_the_spec_bytes() {
    let mut header = example_header_of(2);
    header.segments.clear();
    let bytes = write_file(&header, &[vec![2, 3], vec![3, 4]]).unwrap();
    assert_eq!(bytes, EXAMPLE2);
}

#[test]
fn format2_reader_recovers_the_spec_symbols() {
    let file = read_file(&EXAMPLE2).unwrap();
    assert_eq!(file.header, example_header_of(2));
    assert_eq!(file.layers, vec![vec![2, 3], vec![3, 4]]);
    // Cutting the second segment leaves the first layer.
    let cut = read_file(&EXAMPLE2[..49]).unwrap();
    assert_eq!(cut.layers, vec![vec![2, 3]]);
}

#[test]
fn writer_produces_the_spec_bytes() {
    let bytes = write_file(&example_header(), &[vec![2, 1], vec![3, 0]]).unwrap();
    assert_eq!(bytes, EXAMPLE);
}

#[test]
fn reader_recovers_the_spec_indices() {
    let file = read_file(&EXAMPLE).unwrap();
    assert_eq!(file.header, example_header());
    assert_eq!(file.layers, vec![vec![2, 1], vec![3, 0]]);
    assert_eq!(file.truncation, None);
}

#[test]
fn spec_example_geometry() {
    let header = example_header();
    assert_eq!(header.granule(), 2);
    let tiles = header.tiles();
    assert_eq!(tiles.len(), 2);
    assert_eq!(
        (tiles[1].x, tiles[1].width, tiles[1].padded_width),
        (2, 1, 2)
    );
    assert_eq!(header.index_counts(), vec![2, 2]);
    assert_eq!(ddn::bitstream::layer_bits(&header), vec![4, 4]);
}

#[test]
fn crc_is_the_zlib_crc() {
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn header_only_prefix_has_no_complete_layer() {
    let err = read_file(&EXAMPLE[..36]).unwrap_err();
    assert!(matches!(err, ddn::Error::NoCompleteLayer { .. }), "{err}");
}

#[test]
fn missing_trailer_still_decodes_every_layer() {
    let file = read_file(&EXAMPLE[..37]).unwrap();
    assert_eq!(file.layers.len(), 2);
    assert_eq!(
        file.truncation,
        Some(Truncation {
            complete: 2,
            coded: 2
        })
    );
}
