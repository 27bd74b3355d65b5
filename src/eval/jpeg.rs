//! The JPEG anchor: the `jpeg-encoder` crate set up as people use it for the best
//! results — 4:2:0 chroma subsampling and optimized Huffman tables — decoded with the
//! `jpeg-decoder` crate: the `image` crate's own decoder (zune-jpeg) misdecoded this
//! encoder's 4:2:0 files with optimized tables where libjpeg and jpeg-decoder agreed.

use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::error::{Error, Result};

/// Name of the encoder, for reports.
pub const ENCODER: &str = "jpeg-encoder 0.7 (Rust), 4:2:0, optimized Huffman";

/// Encodes at `quality` (1–100); returns the JPEG file.
pub fn encode(image: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.set_optimized_huffman_tables(true);
    encoder
        .encode(
            image.as_raw(),
            image.width() as u16,
            image.height() as u16,
            ColorType::Rgb,
        )
        .map_err(|e| Error::ImageEncode(e.to_string()))?;
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    let pixels = decoder
        .decode()
        .map_err(|e| Error::ImageDecode(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::ImageDecode("JPEG without a frame".into()))?;
    if info.pixel_format != jpeg_decoder::PixelFormat::RGB24 {
        return Err(Error::ImageDecode(format!(
            "unexpected JPEG pixel format {:?}",
            info.pixel_format
        )));
    }
    RgbImage::from_raw(info.width as u32, info.height as u32, pixels)
        .ok_or_else(|| Error::ImageDecode("JPEG size mismatch".into()))
}
