//! §7.1, §7.3 (formats 2 to 7): a layer's symbols and their contexts.
//!
//! Every cell codes one symbol `s`, `0 ≤ s ≤ K`: a candidate index below `K`, or `K`
//! itself, *keep*, which leaves the cell as it was. A symbol is a keep flag, coded with a
//! probability chosen by whether the left, upper and co-located previous-layer cells were
//! kept, then, when not kept, the index's `bitlen(K−1)` bits, MSB first, each with the
//! probability of its node in a binary tree. In format 7 a layer whose mode bit says so
//! first asks, with a flag each, whether the index is the left or the upper neighbour's.

use crate::error::{Error, Result};

use super::geometry::Tile;
use super::header::LayerSpec;
use super::range_coder::{Adaptation, BitModel, Coding, Framing, RangeDecoder, RangeEncoder};
use crate::schedule::MAX_K;

/// Keep contexts: 0–2 kept neighbours (left, above), times whether the previous layer kept
/// the cell under this one's top-left pixel.
const KEEP_CONTEXTS: usize = 6;
/// Format 7, neighbour mode: the probabilities of the flags "the index is the left
/// neighbour's" (4, by whether the cell above and the cell two to the left took it too)
/// and "the index is the upper neighbour's" (4, by whether the cells above-right and
/// above-left took it too).
const SAME_CONTEXTS: usize = 8;

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

/// What the coding of one cell's symbol looks at (§7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellContext {
    /// The keep flag's context, `0..6`.
    pub keep: usize,
    /// Format 7, neighbour mode: the candidates of the left and the upper neighbour whose
    /// equality with the cell's index is flagged before the index, in that order, each
    /// with its flag's context.
    pub same: [Option<(u32, usize)>; 2],
}

/// The context of cell (`x`, `y`); `current` holds this tile's symbols of this layer in
/// raster order, at least up to the cell before this one.
pub fn cell_context(
    current: &[u32],
    keep: u32,
    grid: CellGrid,
    prev: Option<&PrevLayer>,
    x: usize,
    y: usize,
) -> CellContext {
    // The symbol of the cell `dx` columns right and `dy` rows down of this one, if it is
    // inside the tile and already coded.
    let at = |dx: isize, dy: isize| -> Option<u32> {
        let (cx, cy) = (x as isize + dx, y as isize + dy);
        let inside = cx >= 0 && cy >= 0 && (cx as usize) < grid.cols;
        inside.then(|| current[cy as usize * grid.cols + cx as usize])
    };
    let kept = |s: Option<u32>| (s == Some(keep)) as usize;
    let (left, above) = (at(-1, 0), at(0, -1));
    let under = prev.is_some_and(|p| p.kept_at(x * grid.side, y * grid.side)) as usize;
    let coded = |s: Option<u32>| s.filter(|&s| s != keep);
    let same_left = coded(left).map(|l| {
        let twice = |s: Option<u32>| (s == Some(l)) as usize;
        (l, twice(above) + 2 * twice(at(-2, 0)))
    });
    let same_above = coded(above).filter(|&a| Some(a) != coded(left)).map(|a| {
        let twice = |s: Option<u32>| (s == Some(a)) as usize;
        (a, 4 + twice(at(1, -1)) + 2 * twice(at(-1, -1)))
    });
    CellContext {
        keep: kept(left) + kept(above) + 3 * under,
        same: [same_left, same_above],
    }
}

/// The adaptive probabilities of one layer's symbols.
#[derive(Debug, Clone)]
pub struct LayerModel {
    k: u32,
    depth: u32,
    /// Format 7's neighbour mode: an index may be coded as a flag naming a neighbour's.
    neighbours: bool,
    /// `keep[0..6]`, then `same[0..8]`, then the index tree's nodes `1..2^depth` (node
    /// `n`'s children are `2n` and `2n + 1`; slot 0 of the tree is unused).
    probs: Vec<BitModel>,
}

/// The neighbour flags a model with `neighbours` on or off codes for a cell in context
/// `ctx`: each named candidate with its flag's context.
fn neighbour_flags(neighbours: bool, ctx: &CellContext) -> impl Iterator<Item = &(u32, usize)> {
    let flags = if neighbours { &ctx.same[..] } else { &[] };
    flags.iter().flatten()
}

/// Where the neighbour flags' and the tree's probabilities start in `LayerModel::probs`.
const SAME_SLOTS: usize = KEEP_CONTEXTS;
const TREE_SLOTS: usize = SAME_SLOTS + SAME_CONTEXTS;
/// The most bits one symbol takes: a keep flag, two neighbour flags and an index of
/// `bitlen(MAX_K − 1)` bits.
const MOST_BITS: usize = 3 + (32 - (MAX_K - 1).leading_zeros()) as usize;

/// One symbol's bits, each with the slot of its probability, without allocating (the
/// encoder's choices adapt a model once per cell).
#[derive(Default)]
struct SymbolBits {
    bits: [(usize, bool); MOST_BITS],
    len: usize,
}

impl SymbolBits {
    fn push(&mut self, slot: usize, bit: bool) {
        self.bits[self.len] = (slot, bit);
        self.len += 1;
    }

    fn as_slice(&self) -> &[(usize, bool)] {
        &self.bits[..self.len]
    }
}

impl LayerModel {
    /// Fresh probabilities for a layer of `k` candidates, with or without format 7's
    /// neighbour flags.
    pub fn new(k: u32, adaptation: Adaptation, neighbours: bool) -> Self {
        let depth = 32 - (k - 1).leading_zeros();
        LayerModel {
            k,
            depth,
            neighbours,
            probs: vec![BitModel::new(adaptation); TREE_SLOTS + (1 << depth)],
        }
    }

    /// The keep symbol, `K`.
    pub fn keep_symbol(&self) -> u32 {
        self.k
    }

    /// Every bit of `symbol` with the slot of its probability in `probs`: the keep flag,
    /// then (for an index) the neighbour flags up to the first that names it, then, if
    /// none does, the index's `depth` bits down the tree.
    fn bits(&self, ctx: &CellContext, symbol: u32) -> SymbolBits {
        let mut bits = SymbolBits::default();
        let keep = symbol == self.k;
        bits.push(ctx.keep, keep);
        if keep {
            return bits;
        }
        for &(candidate, flag) in neighbour_flags(self.neighbours, ctx) {
            bits.push(SAME_SLOTS + flag, symbol == candidate);
            if symbol == candidate {
                return bits;
            }
        }
        let depth = self.depth;
        for d in 0..depth {
            let node = (1 << d) | (symbol >> (depth - d)) as usize;
            bits.push(TREE_SLOTS + node, (symbol >> (depth - 1 - d)) & 1 == 1);
        }
        bits
    }

    pub fn encode(&mut self, enc: &mut RangeEncoder, ctx: &CellContext, symbol: u32) {
        for &(slot, bit) in self.bits(ctx, symbol).as_slice() {
            enc.encode(&mut self.probs[slot], bit);
        }
    }

    /// Adapts exactly as coding `symbol` would, without writing it.
    pub fn update(&mut self, ctx: &CellContext, symbol: u32) {
        for &(slot, bit) in self.bits(ctx, symbol).as_slice() {
            self.probs[slot].update(bit);
        }
    }

    /// `None` for an index that is not below `K` (an invalid stream).
    pub fn decode(&mut self, dec: &mut RangeDecoder, ctx: &CellContext) -> Option<u32> {
        if dec.decode(&mut self.probs[ctx.keep]) {
            return Some(self.k);
        }
        for &(candidate, flag) in neighbour_flags(self.neighbours, ctx) {
            if dec.decode(&mut self.probs[SAME_SLOTS + flag]) {
                return Some(candidate);
            }
        }
        let mut node = 1usize;
        for _ in 0..self.depth {
            node = 2 * node + dec.decode(&mut self.probs[TREE_SLOTS + node]) as usize;
        }
        let index = (node - (1 << self.depth)) as u32;
        (index < self.k).then_some(index)
    }

    /// What keep costs now in context `ctx`, in bits.
    pub fn keep_cost(&self, ctx: &CellContext) -> f32 {
        self.probs[ctx.keep].cost(true)
    }

    /// What each index `0..K` costs now in context `ctx`, in bits, using `path` for
    /// scratch (kept by the caller from cell to cell, so that no cell allocates).
    ///
    /// Node `n` of the tree (root 1, children `2n` and `2n + 1`) costs what its path does:
    /// its parent's cost plus its own bit's, added in that order from the keep flag down.
    pub fn index_costs<'a>(&self, ctx: &CellContext, path: &'a mut Vec<f32>) -> &'a [f32] {
        path.resize(2 << self.depth, 0.0);
        let mut before = self.probs[ctx.keep].cost(false);
        path[1] = before;
        for &(_, flag) in neighbour_flags(self.neighbours, ctx) {
            path[1] += self.probs[SAME_SLOTS + flag].cost(false);
        }
        let tree = &self.probs[TREE_SLOTS..];
        for node in 2..2usize << self.depth {
            path[node] = path[node / 2] + tree[node / 2].cost(node % 2 == 1);
        }
        // An index a neighbour flag names costs the flags up to and including that one.
        for &(candidate, flag) in neighbour_flags(self.neighbours, ctx) {
            let same = &self.probs[SAME_SLOTS + flag];
            path[(1 << self.depth) + candidate as usize] = before + same.cost(true);
            before += same.cost(false);
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
    mut code: impl FnMut(usize, &CellContext) -> Option<u32>,
) -> Option<()> {
    let start = symbols.len();
    for y in 0..grid.rows {
        for x in 0..grid.cols {
            let ctx = cell_context(&symbols[start..], keep, grid, prev, x, y);
            symbols.push(code(y * grid.cols + x, &ctx)?);
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

/// Codes one layer's symbols (§7.1 order) into its segment. In format 7 the segment
/// starts with the layer's mode bit (§7.3), and the mode is the one whose segment is
/// shorter, neighbour flags off on a tie.
pub fn encode_layer(
    symbols: &[u32],
    layer: &LayerSpec,
    prev: Option<(LayerSpec, &[u32])>,
    tiles: &[Tile],
    coding: Coding,
) -> Vec<u8> {
    let code = |mode| encode_in_mode(symbols, layer, prev, tiles, coding, mode);
    if !coding.layer_modes {
        return code(None);
    }
    let (plain, flagged) = (code(Some(false)), code(Some(true)));
    if flagged.len() < plain.len() {
        flagged
    } else {
        plain
    }
}

/// [`encode_layer`] with neighbour flags on or off after a mode bit, or with neither.
fn encode_in_mode(
    symbols: &[u32],
    layer: &LayerSpec,
    prev: Option<(LayerSpec, &[u32])>,
    tiles: &[Tile],
    coding: Coding,
    mode: Option<bool>,
) -> Vec<u8> {
    let mut enc = RangeEncoder::new();
    if let Some(neighbours) = mode {
        enc.encode(&mut BitModel::new(coding.adaptation), neighbours);
    }
    let mut model = LayerModel::new(layer.k, coding.adaptation, mode == Some(true));
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

/// Format 7: whether a layer's segment turns its neighbour flags on (§7.3), read from its
/// mode bit; `None` in earlier formats.
pub fn layer_mode(segment: &[u8], coding: Coding) -> Option<bool> {
    read_mode(&mut RangeDecoder::new(segment, coding.framing), coding)
}

/// Format 7: reads a segment's first bit, its layer's mode (§7.3).
fn read_mode(dec: &mut RangeDecoder, coding: Coding) -> Option<bool> {
    coding
        .layer_modes
        .then(|| dec.decode(&mut BitModel::new(coding.adaptation)))
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
    let framing = coding.framing;
    let mut dec = RangeDecoder::new(segment, framing);
    let neighbours = read_mode(&mut dec, coding).unwrap_or(false);
    let mut model = LayerModel::new(layer.k, coding.adaptation, neighbours);
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
