//! Golden files: committed `.ddn` files decode, with the built-in model each one names, to
//! the committed PNG next to it (within ±1 per channel, for float differences between
//! machines). Any change that alters decoding, or drops a shipped model, fails here.

use std::path::{Path, PathBuf};

use candle_core::Device;
use ddn::bitstream::read_file;
use ddn::codec::decode_file;
use ddn::model::shipped;

fn decodes_to_its_png(ddn_path: &Path) {
    let png_path = ddn_path.with_extension("png");
    let file = read_file(&std::fs::read(ddn_path).unwrap()).unwrap();
    let model = shipped::find(file.header.model_id)
        .unwrap_or_else(|| panic!("{}: its model is not built in", ddn_path.display()))
        .load(&Device::Cpu)
        .unwrap();
    let decoded = decode_file(&model, &file, None).unwrap().image.to_rgb8();
    let expected = image::open(&png_path).unwrap().to_rgb8();
    assert_eq!(decoded.dimensions(), expected.dimensions());
    let worst = decoded
        .as_raw()
        .iter()
        .zip(expected.as_raw())
        .map(|(&a, &b)| a.abs_diff(b))
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "{}: a channel differs by {worst}",
        ddn_path.display()
    );
}

fn ddn_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ddn"))
        .filter(|p| p.with_extension("png").exists())
        .collect();
    files.sort();
    files
}

#[test]
fn samples_decode_to_their_pngs() {
    let mut files = ddn_files("samples");
    files.extend(ddn_files("samples/roi"));
    assert!(files.len() >= 8, "{files:?}");
    files.iter().for_each(|f| decodes_to_its_png(f));
}

#[test]
fn files_of_every_shipped_model_still_decode() {
    let files = ddn_files("tests/data");
    let mut versions: Vec<&str> = files
        .iter()
        .map(|f| {
            decodes_to_its_png(f);
            let id = read_file(&std::fs::read(f).unwrap())
                .unwrap()
                .header
                .model_id;
            shipped::find(id).unwrap().version
        })
        .collect();
    versions.sort();
    versions.dedup();
    let shipped_before_newest: Vec<&str> = shipped::SHIPPED[..shipped::SHIPPED.len() - 1]
        .iter()
        .map(|m| m.version)
        .collect();
    for v in shipped_before_newest {
        assert!(versions.contains(&v), "no golden file of model {v}");
    }
}
