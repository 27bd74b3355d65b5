//! Cutting an image into padded tile tensors and pasting decoded tiles back
//! (codec-spec.md §5).

use candle_core::{Device, Tensor};
use image::{GrayImage, RgbImage};

use crate::bitstream::Tile;
use crate::error::Result;
use crate::model::color::{from_model_space, to_model_space};

/// The tiles of `members` with the same padded size, which can share one batch.
fn group_by_size_of(tiles: &[Tile], members: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<(u32, u32), Vec<usize>> = Default::default();
    for &i in members {
        let t = &tiles[i];
        groups
            .entry((t.padded_height, t.padded_width))
            .or_default()
            .push(i);
    }
    groups.into_values().collect()
}

/// Same-size tiles walked as one batch.
pub struct TileBatch<'a> {
    /// The tiles' places in the file's tile list.
    pub indices: &'a [usize],
    pub tiles: Vec<Tile>,
    /// The tiles' padded size in pixels.
    pub height: usize,
    pub width: usize,
}

/// The one tile driver of encoding, decoding and the guided walks: the tiles `members`
/// (places in `tiles`), grouped by padded size and cut into batches of at most
/// `batch_size(height, width)`, in a fixed order, each handed to `walk`.
pub fn for_each_batch(
    tiles: &[Tile],
    members: &[usize],
    batch_size: impl Fn(usize, usize) -> usize,
    mut walk: impl FnMut(TileBatch) -> Result<()>,
) -> Result<()> {
    for group in group_by_size_of(tiles, members) {
        let first = &tiles[group[0]];
        let (height, width) = (first.padded_height as usize, first.padded_width as usize);
        for chunk in group.chunks(batch_size(height, width).max(1)) {
            walk(TileBatch {
                indices: chunk,
                tiles: chunk.iter().map(|&i| tiles[i]).collect(),
                height,
                width,
            })?;
        }
    }
    Ok(())
}

/// A walk's last image at the tiles' full `h × w` (a walk cut before the finest level
/// ends at a coarser grid, which is upsampled bilinearly).
pub fn full_resolution(last: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    Ok(if last.dims()[2..] == [h, w] {
        last.clone()
    } else {
        last.upsample_bilinear2d(h, w, false)?
    })
}

/// Consecutive runs of whole tile rows (tiles in raster order across an image `width`
/// wide), each of at least `min_tiles` tiles where the image allows: a band is decoded
/// and written out before the next, and enough tiles fill a batch.
pub fn bands(
    tiles: &[Tile],
    width: u32,
    min_tiles: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let per_row = tiles
        .first()
        .map_or(1, |t| width.div_ceil(t.width.max(1)) as usize)
        .max(1);
    let per_band = min_tiles.div_ceil(per_row).max(1) * per_row;
    let total = tiles.len();
    (0..total)
        .step_by(per_band)
        .map(move |start| start..(start + per_band).min(total))
}

/// A batch `[B,3,h',w']` of tiles in model space, padded by edge replication.
pub fn tile_batch(image: &RgbImage, tiles: &[Tile], device: &Device) -> Result<Tensor> {
    let (pw, ph) = (tiles[0].padded_width, tiles[0].padded_height);
    let mut data = Vec::with_capacity(tiles.len() * 3 * (pw * ph) as usize);
    for t in tiles {
        for c in 0..3 {
            for y in 0..ph {
                let sy = t.y + y.min(t.height - 1);
                for x in 0..pw {
                    let sx = t.x + x.min(t.width - 1);
                    data.push(to_model_space(image.get_pixel(sx, sy)[c]));
                }
            }
        }
    }
    Ok(Tensor::from_vec(
        data,
        (tiles.len(), 3, ph as usize, pw as usize),
        device,
    )?)
}

/// Per-pixel weights `[B, h', w']` of a batch of tiles, padded by edge replication as
/// [`tile_batch`] pads the pixels: `1 + (gain − 1) · v / 255` for mask value `v`.
pub fn weight_batch(mask: &GrayImage, tiles: &[Tile], gain: f32) -> Vec<f32> {
    let (pw, ph) = (tiles[0].padded_width, tiles[0].padded_height);
    let mut out = Vec::with_capacity(tiles.len() * (pw * ph) as usize);
    for t in tiles {
        for y in 0..ph {
            let sy = t.y + y.min(t.height - 1);
            for x in 0..pw {
                let v = mask.get_pixel(t.x + x.min(t.width - 1), sy)[0] as f32;
                out.push(1.0 + (gain - 1.0) * v / 255.0);
            }
        }
    }
    out
}

/// Writes a decoded batch `[B,3,h',w']` into `image`, whose first row is image row
/// `top`, cropping the padding.
pub fn paste_batch(image: &mut RgbImage, top: u32, tiles: &[Tile], batch: &Tensor) -> Result<()> {
    let (_, _, ph, pw) = batch.dims4()?;
    let values = batch
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let plane = ph * pw;
    for (b, t) in tiles.iter().enumerate() {
        for y in 0..t.height as usize {
            for x in 0..t.width as usize {
                let at = |c: usize| values[(b * 3 + c) * plane + y * pw + x];
                let px = image::Rgb([0, 1, 2].map(|c| from_model_space(at(c))));
                image.put_pixel(t.x + x as u32, t.y - top + y as u32, px);
            }
        }
    }
    Ok(())
}
