//! The `ddn` binary: round trips, and one clear line plus a non-zero exit for every bad
//! input, with no output file left behind.

mod common;

use std::path::Path;
use std::process::Command;

use image::GenericImageView;

use common::{assert_clean_failure, Sandbox};

fn compress_sample(sb: &Sandbox) -> Vec<u8> {
    let out = sb.ddn(&["compress", "img.png", "--layers", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(sb.path("img.ddn")).unwrap()
}

#[test]
fn compress_decompress_info_round_trip() {
    let sb = Sandbox::new();
    compress_sample(&sb);
    let out = sb.ddn(&["decompress", "img.ddn", "-o", "back.png"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = image::open(sb.path("back.png")).unwrap();
    assert_eq!((back.width(), back.height()), (37, 29));
    let info = sb.ddn(&["info", "img.ddn", "--json"]);
    assert!(info.status.success());
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["width"], 37);
    assert_eq!(v["height"], 29);
    assert_eq!(v["layers_coded"], 4);
    assert_eq!(v["format_version"], 7);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    // Every layer of a format-7 file says whether its neighbour flags are on.
    assert!(layers.iter().all(|l| l["neighbour_flags"].is_boolean()));
    let text = sb.ddn(&["info", "img.ddn"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("model id"));
}

#[test]
fn stdin_and_stdout() {
    let sb = Sandbox::new();
    let png = std::fs::read(sb.path("img.png")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddn"))
        .args(["compress", "-", "--layers", "3", "--model"])
        .arg(&sb.model)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&png).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(&out.stdout[..4], ddn::bitstream::MAGIC.as_slice());
}

#[test]
fn bad_ddn_inputs_fail_cleanly_and_leave_nothing() {
    let sb = Sandbox::new();
    let valid = compress_sample(&sb);
    let mut flipped = valid.clone();
    flipped[valid.len() / 2] ^= 0x08;
    let mut state = 12345u64;
    let random: Vec<u8> = (0..500)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("random.ddn", random, "not a .ddn file"),
        ("empty.ddn", Vec::new(), "empty"),
        (
            "magic.ddn",
            b"\x89PNG\r\n\x1a\nrest of a png".to_vec(),
            "not a .ddn file",
        ),
        ("header.ddn", valid[..20].to_vec(), "truncated header"),
        ("flipped.ddn", flipped, "checksum"),
        (
            "version.ddn",
            [&valid[..4], &[9u8][..], &valid[5..]].concat(),
            "version",
        ),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(sb.path(name), bytes).unwrap();
        let out = sb.ddn(&["decompress", name, "-o", "out.png"]);
        assert_clean_failure(&out, expect);
        let out = sb.ddn(&["info", name]);
        assert_clean_failure(&out, expect);
        std::fs::remove_file(sb.path(name)).unwrap();
        assert_eq!(
            sb.extra_files(),
            vec!["img.ddn".to_string()],
            "after {name}"
        );
    }
}

#[test]
fn outputs_are_never_overwritten_without_force() {
    let sb = Sandbox::new();
    compress_sample(&sb);
    let before = std::fs::read(sb.path("img.ddn")).unwrap();
    let out = sb.ddn(&["compress", "img.png", "--layers", "2"]);
    assert_clean_failure(&out, "exists");
    assert_eq!(std::fs::read(sb.path("img.ddn")).unwrap(), before);
    let out = sb.ddn(&["compress", "img.png", "--layers", "2", "-f"]);
    assert!(out.status.success());
    assert_ne!(std::fs::read(sb.path("img.ddn")).unwrap(), before);
    let out = sb.ddn(&["decompress", "img.ddn", "-o", "img.ddn", "-f"]);
    assert_clean_failure(&out, "is the input");
}

#[test]
fn bad_image_inputs_and_paths_fail_cleanly() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("junk.png"), b"this is not a png").unwrap();
    assert_clean_failure(
        &sb.ddn(&["compress", "junk.png", "-o", "junk.ddn"]),
        "cannot read image",
    );
    std::fs::write(sb.path("empty.png"), b"").unwrap();
    assert_clean_failure(&sb.ddn(&["compress", "empty.png", "-o", "e.ddn"]), "empty");
    assert_clean_failure(&sb.ddn(&["compress", "missing.png"]), "missing.png");
    assert_clean_failure(
        &sb.ddn(&["compress", "img.png", "-o", "no/such/dir/x.ddn"]),
        "x.ddn",
    );
    assert_clean_failure(
        &sb.ddn(&["compress", "img.png", "-o", "z.ddn", "--layers", "99"]),
        "99 layers asked for",
    );
    assert_clean_failure(
        &sb.ddn(&["compress", "img.png", "-o", "z.ddn", "--bpp=-1"]),
        "-1 bpp",
    );
    let bad_model = sb.path("bad.safetensors");
    std::fs::write(&bad_model, b"nope").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ddn"))
        .current_dir(sb.dir.path())
        .args(["compress", "img.png", "-o", "m.ddn", "--model"])
        .arg(&bad_model)
        .output()
        .unwrap();
    assert_clean_failure(&out, "invalid model");
    std::fs::remove_file(sb.path("junk.png")).unwrap();
    std::fs::remove_file(sb.path("empty.png")).unwrap();
    std::fs::remove_file(&bad_model).unwrap();
    assert!(sb.extra_files().is_empty(), "{:?}", sb.extra_files());
}

#[test]
fn a_file_from_another_model_names_both() {
    let sb = Sandbox::new();
    compress_sample(&sb);
    let other = sb.path("other.safetensors");
    std::fs::write(&other, common::tiny_model_bytes(2)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ddn"))
        .current_dir(sb.dir.path())
        .args(["decompress", "img.ddn", "-o", "x.png", "--model"])
        .arg(&other)
        .output()
        .unwrap();
    let a = ddn::model::model_id(&common::tiny_model_bytes(1)).to_string();
    let b = ddn::model::model_id(&common::tiny_model_bytes(2)).to_string();
    assert_clean_failure(&out, &a);
    assert_clean_failure(&out, &b);
    assert!(!Path::new(&sb.path("x.png")).exists());
}

/// `sample` and `restore` run the model through the binary and write the images they
/// promise; `info --json` reports the file's real geometry.
#[test]
fn sample_restore_and_info_do_what_they_say() {
    let sb = Sandbox::new();
    let model = sb.model.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = sb.ddn(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&[
        "sample", "--model", &model, "-n", "2", "--size", "24x16", "-o", "grid.png",
    ]);
    let grid = image::open(sb.path("grid.png")).unwrap();
    assert!(
        grid.width() >= 2 * 24 && grid.height() >= 16,
        "{:?}",
        grid.dimensions()
    );
    run(&[
        "restore", "img.png", "--task", "sr", "--scale", "2", "--model", &model, "-o", "sr.png",
    ]);
    assert_eq!(
        image::open(sb.path("sr.png")).unwrap().dimensions(),
        (74, 58)
    );
    compress_sample(&sb);
    let info = run(&["info", "img.ddn", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(37), Some(29))
    );
    assert_eq!(json["layers_coded"].as_u64(), Some(4));
    let file_bytes = std::fs::metadata(sb.path("img.ddn")).unwrap().len();
    assert_eq!(json["file_bytes"].as_u64(), Some(file_bytes));
}

#[test]
fn bad_training_trade_offs_fail_cleanly_before_any_step() {
    let sb = Sandbox::new();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            ".",
            "--out",
            "m.safetensors",
            "--steps",
            "1",
        ];
        args.extend_from_slice(extra);
        sb.ddn(&args)
    };
    assert_clean_failure(&train(&["--keep-lambda", "0,100"]), "--keep-lambda");
    assert_clean_failure(&train(&["--keep-lambda", "100"]), "--keep-lambda");
    assert_clean_failure(
        &train(&["--keep-lambda", "25,16000", "--plain-share", "1.5"]),
        "--plain-share",
    );
    assert_clean_failure(&train(&["--plain-share", "0.3"]), "--keep-lambda");
    assert!(sb.extra_files().is_empty(), "{:?}", sb.extra_files());
}

#[test]
fn tune_takes_psnr_or_ssim_and_nothing_else() {
    let sb = Sandbox::new();
    for tune in ["psnr", "ssim"] {
        let out = sb.ddn(&[
            "compress", "img.png", "--lambda", "500", "--tune", tune, "-f",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back = sb.ddn(&["decompress", "img.ddn", "-o", "back.png", "-f"]);
        assert!(back.status.success());
    }
    let out = sb.ddn(&["compress", "img.png", "--tune", "vmaf", "-f"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ddn: error:") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn a_truncated_file_says_its_output_filter_was_not_applied() {
    let sb = Sandbox::new();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/kodim23-crop.0.25.ddn");
    let bytes = std::fs::read(sample).unwrap();
    std::fs::write(sb.path("cut.ddn"), &bytes[..500]).unwrap();
    // With the built-in model the sample names, not the sandbox's tiny one.
    let out = std::process::Command::new(common::ddn_binary())
        .current_dir(sb.path(""))
        .args(["decompress", "cut.ddn", "-o", "cut.png"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated file"), "{stderr}");
    assert!(stderr.contains("output filter was not applied"), "{stderr}");
}
