//! Files written from codec-spec.md by an independent implementation (tests/data/README.md).

use ddn::bitstream::{read_file, write_file};

fn check(name: &str, width: u32, height: u32, ks: &[u32]) {
    let bytes = std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let file = read_file(&bytes).unwrap();
    assert_eq!((file.header.width, file.header.height), (width, height));
    let got: Vec<u32> = file.header.layers.iter().map(|l| l.k).collect();
    assert_eq!(got, ks);
    assert!(file.truncation.is_none());
    for (layer, spec) in file.layers.iter().zip(&file.header.layers) {
        assert!(layer.iter().all(|&i| i < spec.k));
    }
    assert_eq!(write_file(&file.header, &file.layers).unwrap(), bytes);
}

#[test]
fn four_layers_with_k_5_64_3_256() {
    check("four-layers.ddn", 37, 21, &[5, 64, 3, 256]);
}

#[test]
fn k2_k7_and_k4096() {
    check("k2-many.ddn", 100, 60, &[2, 7, 4096]);
}
