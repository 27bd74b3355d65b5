//! The `.ddn` reader must reject or accept any bytes without panicking, and whatever it
//! accepts must survive a write/read round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = ddn::bitstream::read_file(data) else {
        return;
    };
    if file.truncation.is_none() {
        let again = ddn::bitstream::write_file(&file.header, &file.layers).expect("a read file can be written");
        assert_eq!(again, data, "complete files are canonical");
    }
    let _ = ddn::info::describe(data);
});
