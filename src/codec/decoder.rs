//! The decoder: a file's symbols replayed through the network, band of tiles by band.

use image::{DynamicImage, RgbImage};

use super::filter::BandFilter;
use super::tiles::{self, TileBatch};
use crate::bitstream::{self, DdnFile, Header, Tile, Truncation};
use crate::error::{Error, Result};
use crate::model::{Model, Network, Walk};

/// Pixels per decoder batch: eight tiles of 256 × 256, or one larger tile. Memory
/// follows the batch, not the image.
const DECODE_BATCH_PIXELS: usize = 8 * 256 * 256;

/// Tiles of `height × width` padded pixels per decoder batch.
fn tiles_per_batch(height: usize, width: usize) -> usize {
    (DECODE_BATCH_PIXELS / (height * width).max(1)).max(1)
}

/// A decoded image and what was missing, if anything.
pub struct Decoded {
    pub image: DynamicImage,
    /// The file ended early (codec-spec.md §9).
    pub truncation: Option<Truncation>,
    pub layers_decoded: usize,
}

/// Checks that `file` was made with `model` (codec-spec.md §3, §4).
pub fn check_model(model: &Model, header: &Header) -> Result<()> {
    if header.model_id != model.id {
        return Err(Error::ModelMismatch {
            file: header.model_id,
            model: model.id,
        });
    }
    let schedule = model.network.config().schedule();
    for (l, spec) in header.layers.iter().enumerate() {
        if schedule.get(l) != Some(spec) {
            return Err(Error::ScheduleMismatch {
                model: model.id,
                layer: l,
            });
        }
    }
    Ok(())
}

/// Decodes a `.ddn` file, using at most `max_layers` layers.
pub fn decode(model: &Model, bytes: &[u8], max_layers: Option<usize>) -> Result<Decoded> {
    decode_file(model, &bitstream::read_file(bytes)?, max_layers)
}

/// Decodes a parsed `.ddn` file, using at most `max_layers` layers.
pub fn decode_file(model: &Model, file: &DdnFile, max_layers: Option<usize>) -> Result<Decoded> {
    let header = &file.header;
    let (width, height) = (header.width, header.height);
    let mut image = if header.grey {
        DynamicImage::ImageLuma8(image::GrayImage::new(width, height))
    } else {
        DynamicImage::ImageRgb8(RgbImage::new(width, height))
    };
    let replayed = decode_bands(model, file, max_layers, |band| {
        match &mut image {
            DynamicImage::ImageLuma8(grey) => {
                image::imageops::replace(grey, &band.luma(), 0, band.y as i64)
            }
            DynamicImage::ImageRgb8(rgb) => {
                image::imageops::replace(rgb, &band.rgb, 0, band.y as i64)
            }
            _ => unreachable!("built above as grey or RGB"),
        }
        Ok(())
    })?;
    Ok(Decoded {
        image,
        truncation: replayed.truncation,
        layers_decoded: replayed.layers_decoded,
    })
}

/// What a band-by-band decode replayed, besides the pixels it handed over.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    /// The file ended early (codec-spec.md §9).
    pub truncation: Option<Truncation>,
    pub layers_decoded: usize,
}

/// Rows `y..y + rgb.height()` of a decoded image, the full width.
pub struct Band {
    pub y: u32,
    pub rgb: RgbImage,
}

impl Band {
    /// The band as grey (what a file with the grey flag decodes to, codec-spec.md §6).
    pub fn luma(&self) -> image::GrayImage {
        DynamicImage::ImageRgb8(self.rgb.clone()).to_luma8()
    }
}

/// Decodes `file` band by band, top to bottom, handing each band of tile rows to `sink`
/// as soon as it is done, so that memory holds one band and not the image.
pub fn decode_bands(
    model: &Model,
    file: &DdnFile,
    max_layers: Option<usize>,
    mut sink: impl FnMut(Band) -> Result<()>,
) -> Result<Replayed> {
    check_model(model, &file.header)?;
    let header = &file.header;
    let coded = header.layers.len();
    let n = match max_layers {
        Some(0) => {
            return Err(Error::InvalidArgument(
                "at least one layer must be decoded".into(),
            ))
        }
        Some(m) if m > coded => {
            return Err(Error::InvalidArgument(format!(
                "{m} layers asked for, but the file codes {coded}"
            )))
        }
        Some(m) => m.min(file.layers.len()),
        None => file.layers.len(),
    };
    let tiles = header.tiles();
    let offsets = tile_offsets(header, &tiles, n);
    let side = header.tile as usize;
    // A file has its filter only when complete (§9); it applies to a decode of every layer.
    let mut filter = file
        .filter
        .as_ref()
        .filter(|_| n == header.layers.len())
        .map(|params| BandFilter::new(params, header.width, header.height));
    for band in tiles::bands(&tiles, header.width, tiles_per_batch(side, side)) {
        let top = tiles[band.start].y;
        let bottom = tiles[band.end - 1].y + tiles[band.end - 1].height;
        let mut rgb = RgbImage::new(header.width, bottom - top);
        let members: Vec<usize> = band.collect();
        tiles::for_each_batch(&tiles, &members, tiles_per_batch, |batch| {
            let layers = layers_to_replay(file, &offsets, &batch, n);
            replay_layers(
                &model.network,
                file,
                &offsets,
                &batch,
                layers,
                &mut rgb,
                top,
            )
        })?;
        let Some(filter) = filter.as_mut() else {
            sink(Band { y: top, rgb })?;
            continue;
        };
        let (y, filtered) = filter.push(top as usize, rgb.as_raw());
        if !filtered.is_empty() {
            let rows = (filtered.len() / (3 * header.width as usize)) as u32;
            let rgb = RgbImage::from_raw(header.width, rows, filtered).expect("whole rows");
            sink(Band { y: y as u32, rgb })?;
        }
    }
    Ok(Replayed {
        truncation: file.truncation,
        layers_decoded: n,
    })
}

/// Replays the first `n` layers of one batch of tiles and pastes them into `band`, whose
/// first row is image row `top`.
fn replay_layers(
    network: &Network,
    file: &DdnFile,
    offsets: &[Vec<usize>],
    batch: &TileBatch,
    n: usize,
    band: &mut RgbImage,
    top: u32,
) -> Result<()> {
    let (h, w) = (batch.height, batch.width);
    let indices: Vec<Vec<u32>> = (0..n)
        .map(|l| {
            batch
                .indices
                .iter()
                .flat_map(|&t| {
                    file.layers[l][offsets[l][t]..offsets[l][t + 1]]
                        .iter()
                        .copied()
                })
                .collect()
        })
        .collect();
    let walk = network.walk(batch.tiles.len(), h, w, n, Walk::Replay(&indices))?;
    let last = walk.images.last().expect("at least one layer");
    tiles::paste_batch(
        band,
        top,
        &batch.tiles,
        &tiles::full_resolution(last, h, w)?,
    )
}

/// How many of the first `n` layers a batch replays. A layer in which every cell of the
/// batch's tiles keeps leaves their image as it was (each pixel gets −0 added), so the
/// batch stops after its last layer that codes a cell, with the same pixels; but not at a
/// coarser scale than layer `n − 1`'s, whose image the later levels would upsample. Of the
/// six tiles of a 3072×2048 file at 0.25 bpp, two stop two and three layers early.
fn layers_to_replay(file: &DdnFile, offsets: &[Vec<usize>], batch: &TileBatch, n: usize) -> usize {
    let specs = &file.header.layers[..n];
    let finest = specs[n - 1].scale_log2;
    let first_at_finest = specs
        .iter()
        .position(|s| s.scale_log2 == finest)
        .unwrap_or(n - 1);
    let codes = |l: usize| {
        batch.indices.iter().any(|&t| {
            file.layers[l][offsets[l][t]..offsets[l][t + 1]]
                .iter()
                .any(|&symbol| symbol < specs[l].k)
        })
    };
    let last_coding = (first_at_finest..n).rev().find(|&l| codes(l));
    last_coding.unwrap_or(first_at_finest) + 1
}

/// `offsets[l][t]`: where tile `t`'s indices start in layer `l`'s sequence.
fn tile_offsets(header: &Header, tiles: &[Tile], n: usize) -> Vec<Vec<usize>> {
    header.layers[..n]
        .iter()
        .map(|spec| {
            let mut acc = 0usize;
            let mut v = vec![0];
            for t in tiles {
                acc += t.cell_count(spec) as usize;
                v.push(acc);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode, EncodeOptions, Rate};
    use crate::model::{to_safetensors, LayerConfig, ModelConfig};

    #[test]
    fn a_batch_stops_after_its_last_coding_layer_with_the_same_pixels() {
        // The tiny ladder with three layers at full resolution.
        let mut config = ModelConfig::tiny();
        let finest = config.levels.last_mut().unwrap();
        finest
            .layers
            .extend([LayerConfig { k: 4, cell_log2: 1 }; 2]);
        let network = Network::new(&config, 3, &candle_core::Device::Cpu).unwrap();
        let bytes = to_safetensors(&network, &[], &[]).unwrap();
        let model = Model::from_bytes(&bytes, &candle_core::Device::Cpu).unwrap();
        let source = crate::io::SourceImage {
            rgb: RgbImage::from_fn(40, 24, |x, y| {
                image::Rgb([(7 * x) as u8, (5 * y) as u8, (x * y) as u8])
            }),
            grey: false,
            had_alpha: false,
        };
        let options = EncodeOptions {
            rate: Rate::Layers(6),
            tile: 16,
            ..EncodeOptions::default()
        };
        let mut file = bitstream::read_file(&encode(&model, &source, options).unwrap()).unwrap();
        let n = file.layers.len();
        let tiles = file.header.tiles();
        let offsets = tile_offsets(&file.header, &tiles, n);
        let members: Vec<usize> = (0..tiles.len()).collect();
        let replay = |file: &DdnFile, n: Option<usize>| {
            let mut band = RgbImage::new(40, 24);
            let mut replayed = Vec::new();
            tiles::for_each_batch(&tiles, &members, tiles_per_batch, |batch| {
                let layers = layers_to_replay(file, &offsets, &batch, file.layers.len());
                replayed.push(layers);
                let n = n.unwrap_or(layers);
                replay_layers(&model.network, file, &offsets, &batch, n, &mut band, 0)
            })
            .unwrap();
            (band, replayed)
        };
        // Every cell of the last two layers keeps: the batch stops after layer n − 3.
        let keep = file.header.layers[n - 1].k;
        for l in n - 2..n {
            file.layers[l].iter_mut().for_each(|s| *s = keep);
        }
        let (stopped, replayed) = replay(&file, None);
        assert_eq!(replayed, vec![n - 2; replayed.len()]);
        assert_eq!(stopped, replay(&file, Some(n)).0);
        // Never at a coarser scale than the last layer's: all keeps from the finest level
        // on still replay its first layer.
        let first_at_finest = n - 3;
        for l in first_at_finest..n {
            file.layers[l].iter_mut().for_each(|s| *s = keep);
        }
        let (stopped, replayed) = replay(&file, None);
        assert_eq!(replayed, vec![first_at_finest + 1; replayed.len()]);
        assert_eq!(stopped, replay(&file, Some(n)).0);
    }

    #[test]
    fn a_decoder_batch_holds_a_bounded_number_of_pixels_and_at_least_one_tile() {
        assert_eq!(tiles_per_batch(256, 256), 8);
        assert_eq!(tiles_per_batch(512, 256), 4);
        // One tile of 1024 px is past the bound alone, and still decodes.
        assert_eq!(tiles_per_batch(1024, 1024), 1);
        assert_eq!(tiles_per_batch(4096, 4096), 1);
        assert_eq!(tiles_per_batch(32, 32), 512);
        assert_eq!(tiles_per_batch(0, 0), DECODE_BATCH_PIXELS);
    }
}
