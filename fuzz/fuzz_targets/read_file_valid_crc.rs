//! Like `read_file`, but first rewrites both checksums so that mutations reach the field
//! checks, the geometry and the index unpacker instead of stopping at a CRC mismatch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn fix_crcs(data: &mut [u8]) {
    if data.len() < 24 {
        return;
    }
    // Schedule entries are 4 bytes in format 1, 8 in format 2.
    let entry = if data[4] == 1 { 4 } else { 8 };
    let header_end = 24 + entry * data[22] as usize;
    if data.len() < header_end + 4 {
        return;
    }
    let crc = crc32fast::hash(&data[..header_end]);
    data[header_end..header_end + 4].copy_from_slice(&crc.to_le_bytes());
    if data.len() >= header_end + 8 {
        let end = data.len() - 4;
        let crc = crc32fast::hash(&data[..end]);
        data[end..].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fix_crcs(&mut data);
    let Ok(file) = ddn::bitstream::read_file(&data) else {
        return;
    };
    if file.truncation.is_none() {
        let again = ddn::bitstream::write_file(&file.header, &file.layers).expect("a read file can be written");
        assert_eq!(again, data, "complete files are canonical");
    }
});
