//! Training images: every PNG and JPEG under a folder, and seeded random crops of them.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::color::to_model_space;
use crate::rng::Rng;

pub struct Dataset {
    images: Vec<RgbImage>,
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if crate::io::is_png_or_jpeg(&path) {
            out.push(path);
        }
    }
    Ok(())
}

impl Dataset {
    /// Loads every image under `dir` that is at least `crop` pixels on each side, in
    /// sorted path order so that a seed means the same crops everywhere.
    pub fn load(dir: &Path, crop: usize) -> Result<Self> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let decoded: Vec<Result<RgbImage>> = files
            .par_iter()
            .map(|path| {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                let image = crate::io::decode_image(&bytes)
                    .map_err(|e| Error::ImageDecode(format!("{}: {e}", path.display())))?;
                Ok(image.rgb)
            })
            .collect();
        let images: Vec<RgbImage> = decoded
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|im| im.width() as usize >= crop && im.height() as usize >= crop)
            .collect();
        if images.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no PNG or JPEG image of at least {crop}x{crop} under {}",
                dir.display()
            )));
        }
        Ok(Dataset { images })
    }

    pub fn from_images(images: Vec<RgbImage>) -> Self {
        Dataset { images }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// `n` seeded random crops of `crop × crop` pixels, as images.
    pub fn crops(&self, seed: u64, n: usize, crop: u32) -> Vec<RgbImage> {
        let mut rng = Rng::derive(seed, &[0xC209]);
        (0..n)
            .map(|_| {
                let image = &self.images[rng.below(self.images.len() as u64) as usize];
                let x = rng.below((image.width() - crop + 1) as u64) as u32;
                let y = rng.below((image.height() - crop + 1) as u64) as u32;
                image::imageops::crop_imm(image, x, y, crop, crop).to_image()
            })
            .collect()
    }

    /// The batch of step `step`: `[batch, 3, crop, crop]` in model space. It depends only
    /// on `(seed, step)`, so a resumed run sees the same crops as an unbroken one.
    pub fn batch(
        &self,
        seed: u64,
        step: u64,
        batch: usize,
        crop: usize,
        device: &Device,
    ) -> Result<Tensor> {
        let mut rng = Rng::derive(seed, &[0xDA7A, step]);
        let mut data = Vec::with_capacity(batch * 3 * crop * crop);
        for _ in 0..batch {
            let image = &self.images[rng.below(self.images.len() as u64) as usize];
            let x0 = rng.below((image.width() as usize - crop + 1) as u64) as u32;
            let y0 = rng.below((image.height() as usize - crop + 1) as u64) as u32;
            for c in 0..3 {
                for y in 0..crop as u32 {
                    for x in 0..crop as u32 {
                        let p = image.get_pixel(x0 + x, y0 + y);
                        data.push(to_model_space(p[c]));
                    }
                }
            }
        }
        Ok(Tensor::from_vec(data, (batch, 3, crop, crop), device)?)
    }
}
