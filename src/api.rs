//! The few lines most users need: a [`Codec`] built from the model inside the crate,
//! `compress` from an [`image::DynamicImage`] to `.ddn` bytes and `decompress` back.

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use image::DynamicImage;

use crate::bitstream::{read_file, ModelId};
use crate::codec::{self, EncodeOptions, Rate};
use crate::error::{Error, Result};
use crate::model::{shipped, Model, ModelCache};

/// Compresses images into `.ddn` files and decompresses them, on the CPU.
///
/// ```
/// # fn main() -> ddn::Result<()> {
/// let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
///     image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
/// }));
/// let codec = ddn::Codec::new()?;
/// let bytes = codec.compress(&image, ddn::Rate::Bpp(0.5))?;
/// let back = codec.decompress(&bytes)?;
/// assert_eq!((back.width(), back.height()), (64, 48));
/// assert!(bytes.len() * 8 <= 64 * 48 / 2);
/// # Ok(())
/// # }
/// ```
pub struct Codec {
    /// The model new files are made with.
    encoder: Arc<Model>,
    /// Models loaded to decode files, by id; built-in ones are loaded when first needed.
    decoders: ModelCache,
    /// Whether files of other ids may be decoded with the built-in models.
    built_in: bool,
}

impl Codec {
    /// A codec with the newest built-in model; it decodes files made with any model
    /// `ddn` has shipped.
    pub fn new() -> Result<Self> {
        Ok(Self::with_model(
            shipped::newest().load(&Device::Cpu)?,
            true,
        ))
    }

    /// A codec with the model in a model file (safetensors); it decodes only files made
    /// with that model.
    pub fn from_model_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::with_model(
            Model::load(path.as_ref(), &Device::Cpu)?,
            false,
        ))
    }

    fn with_model(model: Model, built_in: bool) -> Self {
        let decoders = ModelCache::default();
        let encoder = decoders
            .get_or_load(model.id, || Ok(model))
            .expect("loading an already loaded model cannot fail");
        Codec {
            encoder,
            decoders,
            built_in,
        }
    }

    /// The `.ddn` file of `image` at `rate` (alpha is dropped; grey images stay grey).
    pub fn compress(&self, image: &DynamicImage, rate: Rate) -> Result<Vec<u8>> {
        let source = crate::io::source_from(image.clone());
        let opts = EncodeOptions {
            rate,
            ..EncodeOptions::default()
        };
        codec::encode(&self.encoder, &source, opts)
    }

    /// The image in a `.ddn` file: 8-bit RGB, or 8-bit grey for a grey file.
    pub fn decompress(&self, bytes: &[u8]) -> Result<DynamicImage> {
        let file = read_file(bytes)?;
        let model = self.model_for(file.header.model_id)?;
        Ok(codec::decode_file(&model, &file, None)?.image)
    }

    fn model_for(&self, id: ModelId) -> Result<Arc<Model>> {
        self.decoders.get_or_load(id, || {
            let found = shipped::find(id).filter(|_| self.built_in);
            found.ok_or(Error::UnknownModel(id))?.load(&Device::Cpu)
        })
    }
}
