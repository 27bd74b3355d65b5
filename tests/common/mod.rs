//! Helpers shared by the integration tests: tiny models and synthetic images.
#![allow(dead_code)]

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
