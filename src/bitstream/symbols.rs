//! §7.1, §7.3 (formats 2 to 6): a layer's symbols and their contexts.
//!
//! Every cell codes one symbol `s`, `0 ≤ s ≤ K`: a candidate index below `K`, or `K`
//! itself, *keep*, which leaves the cell as it was. A symbol is a keep flag, coded with a
//! probability chosen by whether the left, upper and co-located previous-layer cells were
//! kept, then, when not kept, the index's `bitlen(K−1)` bits, MSB first, each with the
//! probability of its node in a binary tree.

use crate::error::{Error, Result};

use super::geometry::Tile;
use super::header::LayerSpec;
use super::range_coder::{Adaptation, BitModel, Coding, Framing, RangeDecoder, RangeEncoder};

/// Keep contexts: 0–2 kept neighbours (left, above), times whether the previous layer kept
/// the cell under this one's top-left pixel.
const KEEP_CONTEXTS: usize = 6;

/// More symbols than a segment byte can carry (codec-spec.md §7.4): a symbol costs at
/// least `log2(2^B / (2^B − 31))` bits (the most skewed an adaptive probability gets),
/// ≈ 0.022 with [`Adaptation::Fixed`], so a byte holds at most ~364, and ≈ 0.00137 with
/// [`Adaptation::Counted`], at most ~5,860.
fn max_symbols_per_byte(adaptation: Adaptation) -> u64 {
    match adaptation {
        Adaptation::Fixed => 400,
        Adaptation::Counted => 6_000,
    }
}

/// The cells of one layer inside one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellGrid {
    pub cols: usize,
    pub rows: usize,
    /// Side of a cell in image pixels.
    pub side: usize,
}

impl CellGrid {
    pub fn of(tile: &Tile, layer: &LayerSpec) -> Self {
        let (cols, rows) = tile.cells(layer);
        CellGrid {
            cols: cols as usize,
            rows: rows as usize,
            side: layer.cell_pixels() as usize,
        }
    }

    pub fn len(&self) -> usize {
        self.cols * self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One tile's symbols of a finished layer, as the next layer's context sees them.
#[derive(Debug, Clone, Copy)]
pub struct PrevLayer<'a> {
    pub grid: CellGrid,
    pub symbols: &'a [u32],
    pub keep: u32,
}

impl PrevLayer<'_> {
    /// Whether the cell holding image pixel (`px`, `py`) of the tile was kept.
    fn kept_at(&self, px: usize, py: usize) -> bool {
        let (x, y) = (px / self.grid.side, py / self.grid.side);
        self.symbols[y * self.grid.cols + x] == self.keep
    }
}

/// The keep context of cell (`x`, `y`); `current` holds this tile's symbols of this layer in
/// raster order, at least up to the cell before this one.
pub fn keep_context(
    current: &[u32],
    keep: u32,
    grid: CellGrid,
    prev: Option<&PrevLayer>,
    x: usize,
    y: usize,
) -> usize {
    let kept = |i: usize| (current[i] == keep) as usize;
    let left = if x > 0 {
        kept(y * grid.cols + x - 1)
    } else {
        0
    };
    let above = if y > 0 {
        kept((y - 1) * grid.cols + x)
    } else {
        0
    };
    let under = prev.is_some_and(|p| p.kept_at(x * grid.side, y * grid.side)) as usize;
    left + above + 3 * under
}

/// The adaptive probabilities of one layer's symbols.
#[derive(Debug, Clone)]
pub struct LayerModel {
    k: u32,
    depth: u32,
    keep: [BitModel; KEEP_CONTEXTS],
    /// Node `1` is the root; node `n`'s children are `2n` and `2n + 1`.
    tree: Vec<BitModel>,
}

impl LayerModel {
    pub fn new(k: u32, adaptation: Adaptation) -> Self {
        let depth = 32 - (k - 1).leading_zeros();
        let fresh = BitModel::new(adaptation);
        LayerModel {
            k,
            depth,
            keep: [fresh; KEEP_CONTEXTS],
            tree: vec![fresh; 1 << depth],
        }
    }

    /// The keep symbol, `K`.
    pub fn keep_symbol(&self) -> u32 {
        self.k
    }

    /// Every bit of `symbol` with the index of its probability: `keep[ctx]` is slot `ctx`,
    /// tree node `n` is slot `KEEP_CONTEXTS + n` (of a model of `k` indices, `depth` bits).
    fn bits(k: u32, depth: u32, ctx: usize, symbol: u32) -> impl Iterator<Item = (usize, bool)> {
        let keep = symbol == k;
        let depth = if keep { 0 } else { depth };
        let flag = std::iter::once((ctx, keep));
        let index = (0..depth).map(move |d| {
            let node = (1 << d) | (symbol >> (depth - d)) as usize;
            (KEEP_CONTEXTS + node, (symbol >> (depth - 1 - d)) & 1 == 1)
        });
        flag.chain(index)
    }

    fn slot(&mut self, slot: usize) -> &mut BitModel {
        if slot < KEEP_CONTEXTS {
            &mut self.keep[slot]
        } else {
            &mut self.tree[slot - KEEP_CONTEXTS]
        }
    }

    pub fn encode(&mut self, enc: &mut RangeEncoder, ctx: usize, symbol: u32) {
        for (slot, bit) in Self::bits(self.k, self.depth, ctx, symbol) {
            enc.encode(self.slot(slot), bit);
        }
    }

    /// Adapts exactly as coding `symbol` would, without writing it.
    pub fn update(&mut self, ctx: usize, symbol: u32) {
        for (slot, bit) in Self::bits(self.k, self.depth, ctx, symbol) {
            self.slot(slot).update(bit);
        }
    }

    /// `None` for an index that is not below `K` (an invalid stream).
    pub fn decode(&mut self, dec: &mut RangeDecoder, ctx: usize) -> Option<u32> {
        if dec.decode(&mut self.keep[ctx]) {
            return Some(self.k);
        }
        let mut node = 1usize;
        for _ in 0..self.depth {
            node = 2 * node + dec.decode(&mut self.tree[node]) as usize;
        }
        let index = (node - (1 << self.depth)) as u32;
        (index < self.k).then_some(index)
    }

    /// What keep costs now in context `ctx`, in bits.
    pub fn keep_cost(&self, ctx: usize) -> f32 {
        self.keep[ctx].cost(true)
    }

    /// What each index `0..K` costs now in context `ctx`, in bits, using `path` for
    /// scratch (kept by the caller from cell to cell, so that no cell allocates).
    ///
    /// Node `n` of the tree (root 1, children `2n` and `2n + 1`) costs what its path does:
    /// its parent's cost plus its own bit's, added in that order from the keep flag down.
    pub fn index_costs<'a>(&self, ctx: usize, path: &'a mut Vec<f32>) -> &'a [f32] {
        path.resize(2 << self.depth, 0.0);
        path[1] = self.keep[ctx].cost(false);
        for node in 2..2usize << self.depth {
            path[node] = path[node / 2] + self.tree[node / 2].cost(node % 2 == 1);
        }
        &path[1 << self.depth..][..self.k as usize]
    }
}

/// Each tile's grid in one layer, in file order, with the previous layer's symbols of
/// that tile as the contexts see them.
fn layer_tiles<'a>(
    tiles: &[Tile],
    layer: &LayerSpec,
    prev: Option<(LayerSpec, &'a [u32])>,
) -> Vec<(CellGrid, Option<PrevLayer<'a>>)> {
    let mut prev_start = 0;
    tiles
        .iter()
        .map(|t| {
            let prev = prev.map(|(spec, symbols)| {
                let grid = CellGrid::of(t, &spec);
                let at = prev_start;
                prev_start += grid.len();
                PrevLayer {
                    grid,
                    symbols: &symbols[at..at + grid.len()],
                    keep: spec.k,
                }
            });
            (CellGrid::of(t, layer), prev)
        })
        .collect()
}

/// §7.1: one tile's cells of one layer in coding order (raster order). `code(cell, ctx)`
/// gives the symbol of cell `cell` (chosen when encoding, read when decoding), coded in
/// keep context `ctx`; it is appended to `symbols`, which the next cells' contexts read.
/// Stops at the first `None`.
pub fn scan_tile(
    grid: CellGrid,
    keep: u32,
    prev: Option<&PrevLayer>,
    symbols: &mut Vec<u32>,
    mut code: impl FnMut(usize, usize) -> Option<u32>,
) -> Option<()> {
    let start = symbols.len();
    for y in 0..grid.rows {
        for x in 0..grid.cols {
            let ctx = keep_context(&symbols[start..], keep, grid, prev, x, y);
            symbols.push(code(y * grid.cols + x, ctx)?);
        }
    }
    Some(())
}

/// The most symbols a segment of `len` bytes can hold (§7.4): a format-3 segment leaves
/// out up to 5 of its coder's bytes.
pub fn most_symbols(len: u64, coding: Coding) -> u64 {
    let left_out = if coding.framing == Framing::Trimmed {
        5
    } else {
        0
    };
    max_symbols_per_byte(coding.adaptation) * (len + left_out)
}

/// Codes one layer's symbols (§7.1 order) into its segment.
pub fn encode_layer(
    symbols: &[u32],
    layer: &LayerSpec,
    prev: Option<(LayerSpec, &[u32])>,
    tiles: &[Tile],
    coding: Coding,
) -> Vec<u8> {
    let mut model = LayerModel::new(layer.k, coding.adaptation);
    let mut enc = RangeEncoder::new();
    let mut coded = Vec::with_capacity(symbols.len());
    for (grid, prev_tile) in layer_tiles(tiles, layer, prev) {
        let at = coded.len();
        scan_tile(
            grid,
            layer.k,
            prev_tile.as_ref(),
            &mut coded,
            |cell, ctx| {
                let symbol = symbols[at + cell];
                model.encode(&mut enc, ctx, symbol);
                Some(symbol)
            },
        );
    }
    enc.finish(coding.framing)
}

/// Reads one layer's symbols back from its segment.
pub fn decode_layer(
    segment: &[u8],
    layer: &LayerSpec,
    prev: Option<(LayerSpec, &[u32])>,
    tiles: &[Tile],
    index: usize,
    coding: Coding,
) -> Result<Vec<u32>> {
    let mut model = LayerModel::new(layer.k, coding.adaptation);
    let framing = coding.framing;
    let mut dec = RangeDecoder::new(segment, framing);
    let grids = layer_tiles(tiles, layer, prev);
    let total: usize = grids.iter().map(|(g, _)| g.len()).sum();
    let most = most_symbols(segment.len() as u64, coding);
    let mut symbols = Vec::with_capacity(total.min(most as usize));
    for (grid, prev_tile) in grids {
        scan_tile(grid, layer.k, prev_tile.as_ref(), &mut symbols, |_, ctx| {
            let symbol = model.decode(&mut dec, ctx)?;
            // A format-2 segment is read exactly to its end, never past it; a format-3
            // one leaves its last zeros to be read past its end.
            (framing == Framing::Trimmed || dec.consumed() <= segment.len()).then_some(symbol)
        })
        .ok_or(Error::InvalidIndexGroup { layer: index })?;
    }
    Ok(symbols)
}
