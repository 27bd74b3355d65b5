//! Helpers shared by the integration tests: tiny models and synthetic images.
#![allow(dead_code)]
#![cfg_attr(not(feature = "cli"), allow(unused_imports))]

use std::path::PathBuf;
use std::process::{Command, Output};

use candle_core::Device;
use ddn::model::{to_safetensors, Model, ModelConfig, Network};
use image::{Rgb, RgbImage};

/// The bytes of an untrained tiny model file.
pub fn tiny_model_bytes(seed: u64) -> Vec<u8> {
    let network = Network::new(&ModelConfig::tiny(), seed, &Device::Cpu).unwrap();
    to_safetensors(&network, &[], &[]).unwrap()
}

pub fn tiny_model(seed: u64) -> Model {
    Model::from_bytes(&tiny_model_bytes(seed), &Device::Cpu).unwrap()
}

/// A smooth colourful test image with some texture.
pub fn test_image(width: u32, height: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let v = |a: u32, b: u32| {
            let t = (x * a + y * b + seed * 37) as f32 * 0.05;
            (127.5 + 100.0 * t.sin() + ((x ^ y ^ seed) % 17) as f32) as u8
        };
        Rgb([v(3, 1), v(1, 2), v(2, 3)])
    })
}

/// The `ddn` binary under test (built with the default `cli` feature).
#[cfg(feature = "cli")]
pub fn ddn_binary() -> &'static str {
    env!("CARGO_BIN_EXE_ddn")
}

/// A temporary folder with a tiny model and a small PNG, where `ddn` runs.
#[cfg(feature = "cli")]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub model: PathBuf,
}

#[cfg(feature = "cli")]
impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("tiny.safetensors");
        std::fs::write(&model, tiny_model_bytes(1)).unwrap();
        let png = dir.path().join("img.png");
        test_image(37, 29, 3).save(&png).unwrap();
        Sandbox { dir, model }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ddn(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(ddn_binary());
        cmd.current_dir(self.dir.path()).args(args);
        if matches!(args[0], "compress" | "decompress") {
            cmd.arg("--model").arg(&self.model);
        }
        cmd.output().unwrap()
    }

    /// Files in the sandbox other than the ones it started with.
    pub fn extra_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tiny.safetensors" && n != "img.png")
            .collect();
        names.sort();
        names
    }
}

/// The command failed with exactly one `ddn: error:` line that mentions `expect`.
pub fn assert_clean_failure(out: &Output, expect: &str) {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.starts_with("ddn: error: "), "{stderr}");
    assert!(
        stderr.contains(expect),
        "{stderr:?} should mention {expect:?}"
    );
    assert!(!stderr.contains("panicked"));
}
