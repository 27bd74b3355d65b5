//! Arbitrary segments straight into the symbol reader (§7), under a valid geometry taken
//! from the first bytes: the range decoder, the keep contexts and the index tree see every
//! byte the fuzzer makes, with no checksum or header check in the way. Whatever the reader
//! accepts must code back to symbols that read the same.
#![no_main]

use ddn::bitstream::geometry::tiles;
use ddn::bitstream::header::granule;
use ddn::bitstream::range_coder::Framing;
use ddn::bitstream::symbols::{decode_layer, encode_layer};
use ddn::bitstream::LayerSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (geometry, rest) = data.split_at(6);
    // Small images: every run reads a whole layer, so a run costs its cell count.
    let width = 1 + (geometry[0] as u32 & 31);
    let height = 1 + (geometry[2] as u32 & 31);
    let k = 2 + (geometry[3] as u32 % 255);
    let first = LayerSpec {
        k: k ^ (geometry[1] as u32 & 1),
        scale_log2: geometry[4] % 3,
        cell_log2: 1 + (geometry[4] >> 4) % 2,
    };
    let second = LayerSpec { k: 2 + (geometry[5] as u32 % 63), scale_log2: 0, cell_log2: 1 };
    let g = granule(&[first, second]);
    let tile = g * (1 + (geometry[5] as u32 >> 6));
    let tiles = tiles(width, height, tile, g);
    // Formats 3 and 2.
    let framing = if geometry[1] & 2 == 0 { Framing::Trimmed } else { Framing::Whole };
    let split = rest.len() / 2;
    let (seg0, seg1) = rest.split_at(split);
    let Ok(symbols0) = decode_layer(seg0, &first, None, &tiles, 0, framing) else {
        return;
    };
    let again = encode_layer(&symbols0, &first, None, &tiles, framing);
    let reread = decode_layer(&again, &first, None, &tiles, 0, framing).expect("its own coding reads");
    assert_eq!(reread, symbols0);
    let Ok(symbols1) = decode_layer(seg1, &second, Some((first, &symbols0)), &tiles, 1, framing) else {
        return;
    };
    let again = encode_layer(&symbols1, &second, Some((first, &symbols0)), &tiles, framing);
    let reread = decode_layer(&again, &second, Some((first, &symbols0)), &tiles, 1, framing)
        .expect("its own coding reads");
    assert_eq!(reread, symbols1);
});
