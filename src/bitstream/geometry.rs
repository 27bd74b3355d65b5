//! §5 of codec-spec.md: tiles, their padding, and the cells of each layer in each tile.

use super::header::{granule, Header, LayerSpec};

/// One tile: where it sits in the image and its padded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    /// Size inside the image.
    pub width: u32,
    pub height: u32,
    /// Size after edge replication to a multiple of the granule.
    pub padded_width: u32,
    pub padded_height: u32,
}

impl Tile {
    /// Cells of `layer` in this tile, as (columns, rows).
    pub fn cells(&self, layer: &LayerSpec) -> (u32, u32) {
        let side = layer.cell_pixels();
        (self.padded_width / side, self.padded_height / side)
    }

    pub fn cell_count(&self, layer: &LayerSpec) -> u64 {
        let (cx, cy) = self.cells(layer);
        cx as u64 * cy as u64
    }
}

fn round_up(v: u32, multiple: u32) -> u32 {
    v.div_ceil(multiple) * multiple
}

/// Tiles of a `width × height` image in raster order.
pub fn tiles(width: u32, height: u32, tile: u32, granule: u32) -> Vec<Tile> {
    let mut out = Vec::new();
    for y in (0..height).step_by(tile as usize) {
        for x in (0..width).step_by(tile as usize) {
            let w = tile.min(width - x);
            let h = tile.min(height - y);
            out.push(Tile {
                x,
                y,
                width: w,
                height: h,
                padded_width: round_up(w, granule),
                padded_height: round_up(h, granule),
            });
        }
    }
    out
}

impl Header {
    pub fn granule(&self) -> u32 {
        granule(&self.layers)
    }

    /// The file's tiles in raster order (§5).
    pub fn tiles(&self) -> Vec<Tile> {
        tiles(self.width, self.height, self.tile, self.granule())
    }

    /// `N_l` of §7.1 for every coded layer, without listing the tiles (a forged header
    /// can claim hundreds of millions of them). A tile's cells are its padded columns
    /// times its padded rows, so the total is all columns' cells times all rows' cells.
    pub fn index_counts(&self) -> Vec<u64> {
        let g = self.granule();
        let cells_along = |side: u32, side_cells: u32| -> u64 {
            let full = (side / self.tile) as u64;
            let rest = side % self.tile;
            full * (self.tile / side_cells) as u64 + (round_up(rest, g) / side_cells) as u64
        };
        self.layers
            .iter()
            .map(|layer| {
                let p = layer.cell_pixels();
                cells_along(self.width, p) * cells_along(self.height, p)
            })
            .collect()
    }
}
