//! Files written from codec-spec.md by an independent implementation (tests/data/README.md).

use ddn::bitstream::{read_file, write_file};

fn check(name: &str, width: u32, height: u32, ks: &[u32]) {
    let bytes = std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let file = read_file(&bytes).unwrap();
    assert_eq!((file.header.width, file.header.height), (width, height));
    let got: Vec<u32> = file.header.layers.iter().map(|l| l.k).collect();
    assert_eq!(got, ks);
    assert!(file.truncation.is_none());
    let largest = |k: u32| if file.header.version == 1 { k - 1 } else { k };
    for (layer, spec) in file.layers.iter().zip(&file.header.layers) {
        assert!(layer.iter().all(|&i| i <= largest(spec.k)));
    }
    assert_eq!(write_file(&file.header, &file.layers).unwrap(), bytes);
}

/// A format-2 file and the symbols its writer coded, side by side.
fn check_symbols(name: &str) {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(format!("{dir}/{name}.ddn")).unwrap();
    let json = std::fs::read(format!("{dir}/{name}.json")).unwrap();
    let expected: Vec<Vec<u32>> = serde_json::from_slice(&json).unwrap();
    let file = read_file(&bytes).unwrap();
    assert_eq!(file.header.version, 2);
    assert_eq!(file.layers, expected);
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

#[test]
fn format2_five_layers_with_k_5_64_3_256_7() {
    check("v2-five-layers.ddn", 37, 21, &[5, 64, 3, 256, 7]);
    check_symbols("v2-five-layers");
}

#[test]
fn format2_mostly_keep_with_k_1000() {
    check("v2-mostly-keep.ddn", 70, 33, &[2, 16, 1000, 64]);
    check_symbols("v2-mostly-keep");
}
