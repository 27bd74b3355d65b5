//! codec-spec.md §11: the worked examples of every format, byte for byte.

use ddn::bitstream::filter::FILTER_TAPS;
use ddn::bitstream::{
    read_file, with_filter, write_file, FilterParams, Header, LayerSpec, ModelId, Truncation,
};
use ddn::codec::filter::filter_image;
use ddn::Error;

/// §11.4, format 4: §11.1's file with a filter section (derived from the spec by a
/// separate program).
const EXAMPLE4: [u8; 81] = [
    0x89, 0x44, 0x44, 0x4E, // magic
    0x04, 0x00, // version 4, flags
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x03, 0x00, 0x02, 0x00, 0x02, 0x00, // width, height, tile
    0x02, 0x02, // layer count, run count
    0x01, 0x03, 0x00, 0x01, // run 0
    0x01, 0x04, 0x00, 0x10, // run 1
    0x01, 0x01, // segment lengths 1 and 1
    0x26, // filter length F = 38
    0x60, 0x92, 0x3F, 0x1A, // header CRC
    0x51, 0x70, // the two segments
    0x06, 0x02, 0xAC, 0x1B, // p = 6, q = 2, t_1 = 3500
    0x08, 0x78, 0x43, 0xFF, 0xFF, 0xD8, 0x43, 0xC2, 0x1F, 0x9F, 0xFF, 0xF0, 0x87, 0x84, 0x3F, 0xFF,
    0xFD, 0x09, 0xF1, 0x3F, 0xE4, 0xFF, 0xF1, 0x3E, 0x27, 0xFC, 0x9F, 0xFE, 0x27, 0xC4, 0xFF, 0x93,
    0xFF, 0xC0, // 162 coefficients (266 bits), 6 bits of padding
    0xD4, 0xD0, 0x49, 0x59, // trailer CRC
];

/// §11.4's filter.
fn example_filter() -> FilterParams {
    let mut smooth = [[0; FILTER_TAPS]; 3];
    let mut sharp = [[0; FILTER_TAPS]; 3];
    for c in 0..3 {
        (smooth[c][0], smooth[c][5], smooth[c][26]) = (8, 8, c as i32 - 1);
        (sharp[c][0], sharp[c][5], sharp[c][14]) = (-4, -4, 2);
    }
    smooth[1][12] = -3;
    FilterParams {
        precision: 6,
        thresholds: vec![3500],
        directions: 1,
        classes: vec![smooth, sharp],
    }
}

/// §11.5, format 5: §11.1's file with a filter of three direction classes (derived from
/// the spec by a separate program).
const EXAMPLE5: [u8; 89] = [
    0x89, 0x44, 0x44, 0x4E, // magic
    0x05, 0x00, // version 5, flags
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x03, 0x00, 0x02, 0x00, 0x02, 0x00, // width, height, tile
    0x02, 0x02, // layer count, run count
    0x01, 0x03, 0x00, 0x01, // run 0
    0x01, 0x04, 0x00, 0x10, // run 1
    0x01, 0x01, // segment lengths 1 and 1
    0x2E, // filter length F = 46
    0x76, 0xC3, 0xE3, 0x77, // header CRC
    0x51, 0x70, // the two segments
    0x06, 0x01, 0x03, // p = 6, q = 1, d = 3
    0x11, 0xE2, 0x3F, 0xFF, 0xFE, 0x23, 0xC4, 0x7F, 0xFF, 0xFC, 0x47, 0x88, 0xFF, 0xFF, 0xFF, 0xC2,
    0x1F, 0xFF, 0xFE, 0xBE, 0x10, 0xFF, 0xFF, 0xF5, 0xF0, 0x87, 0xFF, 0xFF, 0xA0, 0x87, 0xFF, 0xFF,
    0xFD, 0x84, 0x3F, 0xFF, 0xFF, 0xEC, 0x21, 0xFF, 0xFF, 0xFF,
    0x60, // 243 coefficients (339 bits), 5 bits of padding
    0x53, 0xB6, 0x24, 0x8B, // trailer CRC
];

/// §11.6, format 6: §11.5's file with format 6's probabilities (derived from the spec by
/// a separate program): only the version, the first segment and the checksums differ.
fn example6() -> Vec<u8> {
    let mut bytes = EXAMPLE5.to_vec();
    bytes[4] = 0x06;
    bytes[0x21..0x25].copy_from_slice(&[0x1A, 0xA8, 0xEB, 0xD2]); // header CRC
    bytes[0x25] = 0x54; // layer 0's segment
    bytes[0x55..0x59].copy_from_slice(&[0xFF, 0xE9, 0x52, 0x40]); // trailer CRC
    bytes
}

/// §11.5's filter.
fn example5_filter() -> FilterParams {
    let class = |taps: [(usize, i32); 2]| {
        let mut channel = [0; FILTER_TAPS];
        taps.iter().for_each(|&(j, w)| channel[j] = w);
        [channel; 3]
    };
    // No dominant direction, H > 2·V, V > 2·H.
    let classes = vec![
        class([(0, 4), (5, 4)]),
        class([(5, 8), (26, 1)]),
        class([(0, 8), (26, -1)]),
    ];
    FilterParams {
        precision: 6,
        thresholds: vec![],
        directions: 3,
        classes,
    }
}

/// The 3 × 2 decoded image of §11.4 and §11.5.
fn example_decoded() -> image::RgbImage {
    example_image([
        [[200, 10, 30], [190, 20, 40], [60, 70, 80]],
        [[180, 30, 20], [100, 110, 120], [70, 90, 100]],
    ])
}

fn example_image(rows: [[[u8; 3]; 3]; 2]) -> image::RgbImage {
    image::RgbImage::from_fn(3, 2, |x, y| image::Rgb(rows[y as usize][x as usize]))
}

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
        filter_len: 0,
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

/// §11.1's symbols in a file of format `version` without a filter (`F = 0`).
fn unfiltered_example(version: u8) -> Vec<u8> {
    let mut header = example_header_of(version);
    header.segments.clear();
    write_file(&header, &[vec![2, 3], vec![3, 4]]).unwrap()
}

/// Checks that `filter` turns §11.4's decoded image into `filtered`.
fn assert_filters_to(filter: &FilterParams, filtered: [[[u8; 3]; 3]; 2]) {
    assert_eq!(
        filter_image(filter, &example_decoded()),
        example_image(filtered)
    );
}

/// Checks that §11.1's file in format `version`, with `filter` added, is `expected`, and
/// that taking the filter out again gives the unfiltered file back.
fn assert_writes_with_filter(version: u8, filter: &FilterParams, expected: &[u8]) {
    let plain = unfiltered_example(version);
    let bytes = with_filter(&plain, Some(filter)).unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(with_filter(&bytes, None).unwrap(), plain);
}

/// Reads `bytes`, checking that they hold §11.1's symbols in format `version` with
/// `filter`.
fn read_example(bytes: &[u8], version: u8, filter: FilterParams) -> ddn::bitstream::DdnFile {
    let file = read_file(bytes).unwrap();
    assert_eq!(file.header.version, version);
    assert_eq!(file.layers, vec![vec![2, 3], vec![3, 4]]);
    assert_eq!(file.filter, Some(filter));
    file
}

#[test]
fn format4_writer_produces_the_spec_bytes() {
    assert_eq!(unfiltered_example(4).len(), 43, "§11.1's file and F = 0");
    assert_writes_with_filter(4, &example_filter(), &EXAMPLE4);
}

#[test]
fn format4_reader_parses_the_spec_bytes() {
    let file = read_example(&EXAMPLE4, 4, example_filter());
    assert_eq!(file.header.filter_len, 38);
    // Without its filter section and trailer both layers are there, but not the filter.
    let cut = read_file(&EXAMPLE4[..39]).unwrap();
    assert_eq!(cut.layers.len(), 2);
    assert!(cut.truncation.is_some() && cut.filter.is_none());
}

#[test]
fn format4_filter_gives_the_spec_pixels() {
    let filtered = [
        [[196, 13, 30], [164, 35, 54], [52, 73, 82]],
        [[183, 27, 14], [88, 119, 135], [68, 89, 100]],
    ];
    assert_filters_to(&example_filter(), filtered);
}

#[test]
fn format5_writer_produces_the_spec_bytes() {
    assert_writes_with_filter(5, &example5_filter(), &EXAMPLE5);
}

#[test]
fn format5_reader_parses_the_spec_bytes() {
    let file = read_example(&EXAMPLE5, 5, example5_filter());
    assert_eq!(file.header.filter_len, 46);
}

#[test]
fn format5_filter_gives_the_spec_pixels() {
    let filtered = [
        [[198, 12, 30], [177, 28, 47], [69, 68, 79]],
        [[183, 28, 21], [109, 98, 108], [71, 90, 100]],
    ];
    assert_filters_to(&example5_filter(), filtered);
}

#[test]
fn format6_writer_produces_the_spec_bytes() {
    assert_writes_with_filter(6, &example5_filter(), &example6());
    // The same symbols in format 5 code layer 0 as 0x51.
    assert_eq!(unfiltered_example(5)[0x25], 0x51);
}

#[test]
fn format6_reader_parses_the_spec_bytes() {
    let file = read_example(&example6(), 6, example5_filter());
    assert_eq!(file.header.segments, vec![1, 1]);
}

#[test]
fn format4_cannot_hold_direction_classes() {
    let plain = unfiltered_example(4);
    assert!(with_filter(&plain, Some(&example5_filter())).is_err());
}

#[test]
fn a_filter_cannot_be_added_to_a_file_cut_inside_its_payload() {
    // §11.4's file cut one byte into its second segment: refused, not read past its end.
    assert!(with_filter(&EXAMPLE4[..38], Some(&example_filter())).is_err());
}

/// §11.7, format 7: an 8 × 2 image whose layer 0 takes the neighbour flags (mode 1) and
/// whose layer 1 does not (derived from the spec by a separate program).
const EXAMPLE7: [u8; 48] = [
    0x89, 0x44, 0x44, 0x4E, 0x07, 0x00, // magic, version 7, flags
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // model id
    0x08, 0x00, 0x02, 0x00, 0x08, 0x00, 0x02, 0x02, // width 8, height 2, tile 8, n, r
    0x01, 0x04, 0x00, 0x00, 0x01, 0x03, 0x00, 0x01, // runs
    0x05, 0x02, 0x00, // S_0 = 5, S_1 = 2, F = 0
    0x71, 0x7A, 0x30, 0x57, // header CRC
    0x97, 0x34, 0xA3, 0xD5, 0xAA, // layer 0's segment, mode 1
    0x0A, 0x49, // layer 1's segment, mode 0
    0x00, 0xD9, 0x0E, 0xD9, // trailer CRC
];

/// §11.7's symbols: layer 0's 8 × 2 cells in raster order, then layer 1's 4 × 1.
fn example7_symbols() -> Vec<Vec<u32>> {
    vec![
        vec![1, 1, 1, 2, 2, 4, 0, 0, 1, 1, 3, 2, 2, 4, 0, 3],
        vec![0, 3, 0, 1],
    ]
}

/// §11.7's header with segments of `segments` bytes.
fn example7_header(segments: Vec<u32>) -> Header {
    Header {
        version: 7,
        width: 8,
        height: 2,
        tile: 8,
        layers: vec![
            LayerSpec {
                k: 4,
                scale_log2: 0,
                cell_log2: 0,
            },
            LayerSpec {
                k: 3,
                scale_log2: 1,
                cell_log2: 0,
            },
        ],
        segments,
        ..example_header_of(7)
    }
}

/// A complete file of §11.7's header and the given segments, checksums included.
fn example7_with_segments(segments: &[&[u8]]) -> Vec<u8> {
    let lengths = segments.iter().map(|s| s.len() as u32).collect();
    let mut bytes = example7_header(lengths).to_bytes().unwrap();
    segments.iter().for_each(|s| bytes.extend_from_slice(s));
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn format7_writer_produces_the_spec_bytes() {
    let bytes = write_file(&example7_header(vec![]), &example7_symbols()).unwrap();
    assert_eq!(bytes, EXAMPLE7);
    assert_eq!(
        example7_with_segments(&[&EXAMPLE7[0x25..0x2A], &[0x0A, 0x49]]),
        EXAMPLE7
    );
}

#[test]
fn format7_reader_recovers_the_spec_symbols() {
    let file = read_file(&EXAMPLE7).unwrap();
    assert_eq!(file.header.version, 7);
    assert_eq!(file.layers, example7_symbols());
    assert_eq!(file.filter, None);
}

#[test]
fn format7_segments_in_the_mode_the_writer_would_not_take_are_refused() {
    let mode1 = &EXAMPLE7[0x25..0x2A];
    // Layer 0 in mode 0 (6 bytes, one more than mode 1), and layer 1 in mode 1 (as long
    // as mode 0, which a tie takes): each decodes to §11.7's symbols but is not canonical.
    let layer0_mode0 = [0x13, 0xE4, 0xF7, 0xC2, 0x0F, 0x59];
    for segments in [[&layer0_mode0[..], &[0x0A, 0x49]], [mode1, &[0x8A, 0x25]]] {
        let bytes = example7_with_segments(&segments);
        assert!(
            matches!(read_file(&bytes), Err(Error::InvalidIndexGroup { .. })),
            "{segments:02X?}"
        );
    }
}
