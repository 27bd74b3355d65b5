//! codec-spec.md §9: a corpus of damaged files, each with the error a reader must give.

use ddn::bitstream::{read_file, write_file, Header, LayerSpec, ModelId};
use ddn::Error;

fn layer(k: u32, scale_log2: u8, cell_log2: u8) -> LayerSpec {
    LayerSpec {
        k,
        scale_log2,
        cell_log2,
    }
}

/// A 37×21 image in 16-px tiles with four layers of different K.
fn sample() -> (Header, Vec<Vec<u32>>) {
    let header = Header {
        version: 1,
        grey: false,
        model_id: ModelId(*b"testmdl1"),
        width: 37,
        height: 21,
        tile: 16,
        layers: vec![
            layer(5, 3, 0),
            layer(64, 2, 1),
            layer(3, 1, 2),
            layer(256, 0, 3),
        ],
        segments: vec![],
        filter_len: 0,
    };
    let layers = header
        .index_counts()
        .iter()
        .zip(&header.layers)
        .map(|(&n, spec)| (0..n as u32).map(|i| (i * 7 + 3) % spec.k).collect())
        .collect();
    (header, layers)
}

fn sample_bytes() -> Vec<u8> {
    let (header, layers) = sample();
    write_file(&header, &layers).unwrap()
}

/// Rewrites both checksums so that a deliberately wrong field reaches validation.
fn fix_crcs(bytes: &mut [u8]) {
    let n = bytes[22] as usize;
    // Schedule entries are 4 bytes in format 1, 8 in format 2.
    let entry = if bytes[4] == 1 { 4 } else { 8 };
    let header_crc_at = 24 + entry * n;
    let crc = crc32fast::hash(&bytes[..header_crc_at]);
    bytes[header_crc_at..header_crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

fn with_field(offset: usize, value: &[u8]) -> Error {
    let mut bytes = sample_bytes();
    bytes[offset..offset + value.len()].copy_from_slice(value);
    fix_crcs(&mut bytes);
    read_file(&bytes).unwrap_err()
}

#[test]
fn intact_file_round_trips() {
    let (header, layers) = sample();
    let file = read_file(&sample_bytes()).unwrap();
    assert_eq!(file.header, header);
    assert_eq!(file.layers, layers);
}

#[test]
fn empty_input() {
    assert!(matches!(read_file(&[]).unwrap_err(), Error::EmptyInput));
}

#[test]
fn random_bytes() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for len in [1usize, 3, 4, 27, 100, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(matches!(read_file(&bytes).unwrap_err(), Error::BadMagic));
    }
}

#[test]
fn wrong_magic() {
    let mut bytes = sample_bytes();
    bytes[1] = b'X';
    assert!(matches!(read_file(&bytes).unwrap_err(), Error::BadMagic));
    assert!(matches!(
        read_file(b"\x89PNG\r\n\x1a\n").unwrap_err(),
        Error::BadMagic
    ));
}

#[test]
fn unknown_version() {
    let mut bytes = sample_bytes();
    bytes[4] = 8;
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::UnsupportedVersion {
            version: 8,
            newest: 7
        }
    ));
}

#[test]
fn truncated_header() {
    let bytes = sample_bytes();
    let header_len = Header::encoded_len_for(1, 4);
    for len in 5..header_len {
        let err = read_file(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, Error::TruncatedHeader { .. }),
            "len {len}: {err}"
        );
    }
}

fn assert_every_bit_flip_is_caught(bytes: &[u8]) {
    assert!(read_file(bytes).is_ok());
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.to_vec();
        damaged[bit / 8] ^= 0x80 >> (bit % 8);
        assert!(
            read_file(&damaged).is_err(),
            "flip of bit {bit} went unnoticed"
        );
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    assert_every_bit_flip_is_caught(&sample_bytes());
}

#[test]
fn bit_flip_in_payload_is_a_checksum_error() {
    let mut bytes = sample_bytes();
    let at = Header::encoded_len_for(1, 4) + 3;
    bytes[at] ^= 0x10;
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::FileChecksum { .. }
    ));
}

#[test]
fn bit_flip_in_header_is_a_header_checksum_error() {
    let mut bytes = sample_bytes();
    bytes[17] ^= 0x01;
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::HeaderChecksum { .. }
    ));
}

#[test]
fn trailing_bytes() {
    let mut bytes = sample_bytes();
    bytes.push(0);
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::TrailingBytes { extra: 1 }
    ));
}

#[test]
fn every_truncation_after_the_header_is_a_prefix_or_a_clear_error() {
    let (_, layers) = sample();
    let header_len = Header::encoded_len_for(1, 4);
    assert_every_cut_is_a_prefix_or_has_no_layer(&sample_bytes(), header_len, &layers);
}

/// Every cut of `bytes` from `header_len` on reads as the first layers of `layers` (more
/// of them the longer the cut, all four before the trailer), or as no complete layer.
fn assert_every_cut_is_a_prefix_or_has_no_layer(
    bytes: &[u8],
    header_len: usize,
    layers: &[Vec<u32>],
) {
    let mut seen_complete = Vec::new();
    for len in header_len..bytes.len() {
        match read_file(&bytes[..len]) {
            Ok(file) => {
                let t = file.truncation.expect("shorter file is truncated");
                assert_eq!(file.layers, layers[..t.complete]);
                seen_complete.push(t.complete);
            }
            Err(err) => assert!(matches!(err, Error::NoCompleteLayer { .. }), "{err}"),
        }
    }
    assert!(seen_complete.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(seen_complete.last(), Some(&4));
}

#[test]
fn zero_and_oversized_dimensions() {
    assert!(matches!(
        with_field(16, &[0, 0]),
        Error::ImageSize { width: 0, .. }
    ));
    assert!(matches!(
        with_field(18, &[0, 0]),
        Error::ImageSize { height: 0, .. }
    ));
    // 65535 × 65535 is over the 256 MP cap.
    let mut bytes = sample_bytes();
    bytes[16..20].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    fix_crcs(&mut bytes);
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::ImageSize { .. }
    ));
}

#[test]
fn out_of_range_fields() {
    let field = |err: Error| match err {
        Error::InvalidField { field, .. } => field,
        other => panic!("expected InvalidField, got {other}"),
    };
    assert_eq!(field(with_field(5, &[0x02])), "flags");
    assert_eq!(field(with_field(6, &[1])), "reserved bytes 6-7");
    assert_eq!(field(with_field(23, &[1])), "reserved byte 23");
    // Each reserved field is reported with its own value, not merged with another.
    let message = with_field(23, &[1]).to_string();
    assert!(message.contains("reserved byte 23 = 1"), "{message}");
    assert_eq!(field(with_field(24, &[1, 0])), "K");
    assert_eq!(field(with_field(24, &[0x01, 0x10])), "K");
    assert_eq!(field(with_field(26, &[8])), "scale");
    assert_eq!(field(with_field(20, &[12, 0])), "tile size");
    assert_eq!(field(with_field(20, &[0, 0x20])), "tile size");
}

#[test]
fn zero_layers_is_invalid() {
    let mut bytes = sample_bytes()[..24].to_vec();
    bytes[22] = 0;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let err = read_file(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "layer count",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_index_group() {
    // Layer 0 has K = 5 and 15 cells (8-px cells over six tiles): one group of 15 digits
    // in bitlen(5^15 - 1) = 35 bits. Leading ones make it at least 3.4e10 ≥ 5^15.
    let mut bytes = sample_bytes();
    let at = Header::encoded_len_for(1, 4);
    bytes[at] = 0xFF;
    bytes[at + 1] |= 0xFC;
    fix_crcs(&mut bytes);
    let err = read_file(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::InvalidIndexGroup { layer: 0 }),
        "{err}"
    );
}

#[test]
fn nonzero_padding() {
    let mut bytes = sample_bytes();
    let last_payload = bytes.len() - 5;
    bytes[last_payload] |= 0x01;
    fix_crcs(&mut bytes);
    let total_bits: u64 = ddn::bitstream::layer_bits(&sample().0).iter().sum();
    assert!(
        !total_bits.is_multiple_of(8),
        "the sample must have padding bits"
    );
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::NonzeroPadding
    ));
}

#[test]
fn writer_rejects_wrong_index_counts_and_ranges() {
    let (header, mut layers) = sample();
    layers[1].pop();
    assert!(matches!(
        write_file(&header, &layers).unwrap_err(),
        Error::IndexCountMismatch { layer: 1, .. }
    ));
    let (header, mut layers) = sample();
    layers[2][0] = 3;
    assert!(matches!(
        write_file(&header, &layers).unwrap_err(),
        Error::IndexOutOfRange {
            layer: 2,
            index: 3,
            k: 3
        }
    ));
}

/// The sample in format 2, every third cell kept.
fn sample_v2_bytes() -> Vec<u8> {
    let (mut header, mut layers) = sample();
    header.version = 2;
    for (symbols, spec) in layers.iter_mut().zip(&header.layers) {
        symbols.iter_mut().step_by(3).for_each(|s| *s = spec.k);
    }
    write_file(&header, &layers).unwrap()
}

/// Header offset of layer `l`'s segment length in format 2.
fn segment_length_at(l: usize) -> usize {
    24 + 8 * l + 4
}

#[test]
fn format2_every_single_bit_flip_is_caught() {
    assert_every_bit_flip_is_caught(&sample_v2_bytes());
}

#[test]
fn format2_moved_segment_boundary_is_rejected() {
    let mut bytes = sample_v2_bytes();
    let (a, b) = (segment_length_at(0), segment_length_at(1));
    let len0 = u32::from_le_bytes(bytes[a..a + 4].try_into().unwrap());
    let len1 = u32::from_le_bytes(bytes[b..b + 4].try_into().unwrap());
    bytes[a..a + 4].copy_from_slice(&(len0 + 1).to_le_bytes());
    bytes[b..b + 4].copy_from_slice(&(len1 - 1).to_le_bytes());
    fix_crcs(&mut bytes);
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::InvalidIndexGroup { .. }
    ));
}

#[test]
fn format2_index_beyond_k_is_rejected() {
    // Index 3 coded for K = 4 reads, for K = 3, as a tree path past the last index.
    let header = Header {
        version: 2,
        grey: false,
        model_id: ModelId(*b"testmdl1"),
        width: 4,
        height: 4,
        tile: 4,
        layers: vec![layer(4, 2, 0)],
        segments: vec![],
        filter_len: 0,
    };
    let mut bytes = write_file(&header, &[vec![3]]).unwrap();
    bytes[24] = 3;
    fix_crcs(&mut bytes);
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::InvalidIndexGroup { layer: 0 }
    ));
}

/// A valid header for a 65,535 × 4,096 image in 1-px tiles and 1-px cells (268 million
/// tiles and cells), followed by a few bytes: the reader must say no at once, without
/// listing the tiles or allocating for the cells.
fn bomb(version: u8) -> Vec<u8> {
    let header = Header {
        version,
        grey: false,
        model_id: ModelId(*b"testmdl1"),
        width: 65_535,
        height: 4_096,
        tile: 1,
        layers: vec![layer(2, 0, 0)],
        segments: if version == 1 { vec![] } else { vec![5] },
        filter_len: 0,
    };
    let mut bytes = header.to_bytes().unwrap();
    bytes.extend_from_slice(&[0; 5]);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn a_tiny_file_claiming_huge_geometry_is_refused_at_once() {
    assert!(matches!(
        read_file(&bomb(1)).unwrap_err(),
        Error::NoCompleteLayer { .. }
    ));
    for version in [2, 3] {
        assert!(matches!(
            read_file(&bomb(version)).unwrap_err(),
            Error::InvalidIndexGroup { layer: 0 }
        ));
    }
}

/// The sample in format 3, every third cell kept, and its header's length.
fn sample_v3_bytes() -> (Vec<u8>, usize) {
    let (mut header, mut layers) = sample();
    header.version = 3;
    for (symbols, spec) in layers.iter_mut().zip(&header.layers) {
        symbols.iter_mut().step_by(3).for_each(|s| *s = spec.k);
    }
    let bytes = write_file(&header, &layers).unwrap();
    let header_len = read_file(&bytes).unwrap().header.encoded_len();
    (bytes, header_len)
}

/// Rewrites both checksums of a format-3 file whose header is `header_len` bytes.
fn fix_crcs_v3(bytes: &mut [u8], header_len: usize) {
    let crc_at = header_len - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..header_len].copy_from_slice(&crc.to_le_bytes());
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

/// Offset of format 3's varints in the sample: its four layers differ, so four runs.
const SAMPLE_V3_VARINTS: usize = 22 + 4 * 4;

#[test]
fn format3_every_single_bit_flip_is_caught() {
    assert_every_bit_flip_is_caught(&sample_v3_bytes().0);
}

#[test]
fn format3_every_cut_is_a_truncated_header_a_prefix_or_a_clear_error() {
    let (bytes, header_len) = sample_v3_bytes();
    let full = read_file(&bytes).unwrap();
    for len in 5..header_len {
        let err = read_file(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, Error::TruncatedHeader { .. }),
            "len {len}: {err}"
        );
    }
    assert_every_cut_is_a_prefix_or_has_no_layer(&bytes, header_len, &full.layers);
}

#[test]
fn format3_moved_segment_boundary_is_rejected() {
    let (mut bytes, header_len) = sample_v3_bytes();
    let at = SAMPLE_V3_VARINTS;
    assert!(bytes[at] < 0x7F && bytes[at + 1] > 0 && bytes[at + 1] < 0x80);
    bytes[at] += 1;
    bytes[at + 1] -= 1;
    fix_crcs_v3(&mut bytes, header_len);
    assert!(matches!(
        read_file(&bytes).unwrap_err(),
        Error::InvalidIndexGroup { .. }
    ));
}

/// The sample with `edit` applied to its header (which may change its length), both
/// checksums made right again: what the reader says of it.
fn with_v3_header_edit(edit: impl FnOnce(&mut Vec<u8>)) -> Error {
    let (bytes, header_len) = sample_v3_bytes();
    let mut header = bytes[..header_len - 4].to_vec();
    edit(&mut header);
    let new_len = header.len() + 4;
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(&bytes[header_len..]);
    fix_crcs_v3(&mut header, new_len);
    read_file(&header).unwrap_err()
}

#[test]
fn format3_header_rules_are_enforced() {
    let field = |err: Error| match err {
        Error::InvalidField { field, .. } => field,
        other => panic!("{other}"),
    };
    // A varint with a needless continuation byte.
    let err = with_v3_header_edit(|h| {
        h[SAMPLE_V3_VARINTS] |= 0x80;
        h.insert(SAMPLE_V3_VARINTS + 1, 0);
    });
    assert_eq!(field(err), "segment lengths");
    // Runs that cover one layer more than the count.
    let err = with_v3_header_edit(|h| h[22] += 1);
    assert_eq!(field(err), "layers in runs");
    // Two equal runs in a row: the second run made a copy of the first.
    let err = with_v3_header_edit(|h| {
        h[21] += 1;
        h[20] += 1;
        let run: Vec<u8> = h[22..26].to_vec();
        h.splice(26..26, run);
        h.insert(SAMPLE_V3_VARINTS + 4, 5);
    });
    assert_eq!(field(err), "run");
    // A run of no layers.
    let err = with_v3_header_edit(|h| h[22] = 0);
    assert_eq!(field(err), "run length");
    // A nonzero reserved flag bit.
    let err = with_v3_header_edit(|h| h[5] = 0x02);
    assert_eq!(field(err), "flags");
    // A varint of six bytes.
    let err = with_v3_header_edit(|h| {
        h[SAMPLE_V3_VARINTS] |= 0x80;
        h.splice(
            SAMPLE_V3_VARINTS + 1..SAMPLE_V3_VARINTS + 1,
            [0x80, 0x80, 0x80, 0x80, 0x00],
        );
    });
    assert_eq!(field(err), "segment length");
}

/// The sample in format 4 with a two-class output filter.
fn sample_v4_bytes() -> Vec<u8> {
    sample_with_filter(4, 1)
}

/// The sample in format 5 with two activity classes of three direction classes each.
fn sample_v5_bytes() -> Vec<u8> {
    sample_with_filter(5, 3)
}

/// The sample in format `version` with an output filter of two activity classes and
/// `directions` direction classes.
fn sample_with_filter(version: u8, directions: u8) -> Vec<u8> {
    use ddn::bitstream::{filter::FILTER_TAPS, with_filter, FilterParams};
    let (mut header, mut layers) = sample();
    header.version = version;
    for (symbols, spec) in layers.iter_mut().zip(&header.layers) {
        symbols.iter_mut().step_by(3).for_each(|s| *s = spec.k);
    }
    let plain = write_file(&header, &layers).unwrap();
    let mut class = [[0; FILTER_TAPS]; 3];
    class[0][0] = 7;
    class[2][13] = -20;
    let mut classes = vec![class];
    classes.extend((1..2 * directions as i32).map(|k| [[3 - k; FILTER_TAPS]; 3]));
    let filter = FilterParams {
        precision: 7,
        thresholds: vec![1000],
        directions,
        classes,
    };
    with_filter(&plain, Some(&filter)).unwrap()
}

#[test]
fn format4_every_single_bit_flip_is_caught() {
    let bytes = sample_v4_bytes();
    assert!(read_file(&bytes).unwrap().filter.is_some());
    assert_every_bit_flip_is_caught(&bytes);
}

/// Where a file's filter section starts.
fn filter_section_start(bytes: &[u8]) -> usize {
    let filter_len = read_file(bytes).unwrap().header.filter_len as usize;
    bytes.len() - 4 - filter_len
}

/// The field named by the error of reading `bytes` with byte `at` of its filter section
/// set to `value` (checksums fixed, so that only the ranges can say no).
fn refused_filter_field(bytes: &[u8], at: usize, value: u8) -> &'static str {
    let header_len = read_file(bytes).unwrap().header.encoded_len();
    let mut damaged = bytes.to_vec();
    damaged[filter_section_start(bytes) + at] = value;
    fix_crcs_v3(&mut damaged, header_len);
    match read_file(&damaged).unwrap_err() {
        Error::InvalidField { field, .. } => field,
        other => panic!("{other}"),
    }
}

#[test]
fn format4_damaged_filter_section_is_refused_by_name() {
    let bytes = sample_v4_bytes();
    // Precision 13, then 0 classes.
    for (at, value, field) in [(0, 13, "filter precision"), (1, 0, "filter classes")] {
        assert_eq!(refused_filter_field(&bytes, at, value), field);
    }
    // Cut inside the section: a truncated file, decoded whole but not filtered.
    let section = filter_section_start(&bytes);
    let cut = read_file(&bytes[..section + 3]).unwrap();
    assert!(cut.truncation.is_some() && cut.filter.is_none());
    assert_eq!(cut.layers.len(), 4);
}

#[test]
fn format5_every_single_bit_flip_is_caught() {
    let bytes = sample_v5_bytes();
    assert_eq!(read_file(&bytes).unwrap().filter.unwrap().directions, 3);
    assert_every_bit_flip_is_caught(&bytes);
}

#[test]
fn format6_every_single_bit_flip_is_caught() {
    let bytes = sample_with_filter(6, 3);
    assert_eq!(read_file(&bytes).unwrap().header.version, 6);
    assert_every_bit_flip_is_caught(&bytes);
}

/// The same symbols in formats `older` and `newer` make other bytes,
/// and the newer file's segments under the older version byte (checksums fixed) are
/// refused, or at least not read as the symbols they code.
fn assert_segments_are_not_read_as_the_older_format(older: u8, newer: u8) {
    let (old, new) = (sample_with_filter(older, 3), sample_with_filter(newer, 3));
    let symbols = read_file(&new).unwrap().layers;
    assert_eq!(read_file(&old).unwrap().layers, symbols);
    assert_ne!(old, new);
    let header_len = read_file(&new).unwrap().header.encoded_len();
    let mut relabelled = new.clone();
    relabelled[4] = older;
    fix_crcs_v3(&mut relabelled, header_len);
    match read_file(&relabelled) {
        Err(Error::InvalidIndexGroup { .. }) => {}
        Ok(file) => assert_ne!(file.layers, symbols),
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn format6_segments_are_not_read_with_format5_probabilities() {
    assert_segments_are_not_read_as_the_older_format(5, 6);
}

#[test]
fn format7_every_single_bit_flip_is_caught() {
    let (mut header, mut layers) = sample();
    header.version = 7;
    for (symbols, spec) in layers.iter_mut().zip(&header.layers) {
        // Runs of four equal indices and every fifth cell kept, so that some layers take
        // the neighbour flags (codec-spec.md §7.3) and some do not.
        for (i, s) in symbols.iter_mut().enumerate() {
            *s = if i % 5 == 4 {
                spec.k
            } else {
                (i as u32 / 4 * 7 + 3) % spec.k
            };
        }
    }
    let bytes = write_file(&header, &layers).unwrap();
    let flags: Vec<Option<bool>> = ddn::info::describe(&bytes)
        .unwrap()
        .layers
        .iter()
        .map(|l| l.neighbour_flags)
        .collect();
    assert!(
        flags.contains(&Some(true)) && flags.contains(&Some(false)),
        "{flags:?}"
    );
    assert_every_bit_flip_is_caught(&bytes);
}

#[test]
fn format7_segments_are_not_read_as_format6() {
    // Each of format 7's segments starts with its mode bit (codec-spec.md §7.3).
    assert_segments_are_not_read_as_the_older_format(6, 7);
}

#[test]
fn format5_damaged_direction_count_is_refused_by_name() {
    let bytes = sample_v5_bytes();
    for d in [0, 2, 4, 255] {
        assert_eq!(
            refused_filter_field(&bytes, 2, d),
            "filter directions",
            "d = {d}"
        );
    }
}
