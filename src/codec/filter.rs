//! The output filter (codec-spec.md §7.5, formats 4 to 7): a small linear filter per
//! class and channel that the encoder fits to the source by least squares and the
//! decoder applies to the decoded image, in integers only. A pixel's class is its local
//! activity and, in format 5, whether horizontal or vertical detail dominates around it.
//! A DDN's candidates are samples, not averages: on Kodak the fitted filter takes 0.1–0.4
//! dB of noise out of them for 40–450 bytes (docs/experiments.md, "The output filter").

use std::ops::Range;

use image::RgbImage;
use rayon::prelude::*;

use crate::bitstream::filter::{
    ClassCoefficients, FilterParams, DIRECTION_COUNTS, FILTER_TAPS, MAX_CLASSES, MAX_COEFFICIENT,
};
use crate::bitstream::FORMAT_VERSION;
use crate::error::Result;

/// Rows a filtered row reads above and below it (the diamond's radius, and the activity's
/// two rows of window plus one of Laplacian).
pub const FILTER_REACH: usize = 3;

/// The other channels' pairs `(dx, dy)` of §7.5, in coefficient order (a diamond of
/// radius 2).
const CROSS_PAIRS: [(i64, i64); 6] = [(1, 0), (0, 1), (1, 1), (-1, 1), (2, 0), (0, 2)];

/// The own-channel pairs `(dx, dy)` of §7.5, in coefficient order.
const PAIRS: [(i64, i64); 12] = [
    (1, 0),
    (2, 0),
    (3, 0),
    (-2, 1),
    (-1, 1),
    (0, 1),
    (1, 1),
    (2, 1),
    (-1, 2),
    (0, 2),
    (1, 2),
    (0, 3),
];

/// Rows of an unfiltered image held in memory: image rows `first ..` of `width` pixels,
/// RGB, in an image of `height` rows. Reads clamp to the image (§7.5), and the rows a
/// read lands on must be held.
///
/// They are held as a copy with [`FILTER_REACH`] pixels of border on every side, each
/// border pixel a copy of the one the clamp would read, so that a read is an index and
/// the features of a pixel are fixed offsets from it: clamping every read took 7 % of a
/// decode (profiled).
struct Rows {
    padded: Vec<u8>,
    /// Image row of the copy's first row.
    top: i64,
    width: usize,
    height: usize,
    /// Bytes from a pixel to its neighbour `(dx, dy)` of [`PAIRS`] and [`CROSS_PAIRS`].
    pair_offsets: [isize; PAIRS.len()],
    cross_offsets: [isize; CROSS_PAIRS.len()],
}

impl Rows {
    fn new(rgb: &[u8], first: usize, width: usize, height: usize) -> Self {
        let reach = FILTER_REACH as i64;
        let held = rgb.len() / (3 * width).max(1);
        let (top, bottom) = (first as i64 - reach, (first + held) as i64 + reach);
        let padded_width = width + 2 * FILTER_REACH;
        let mut padded = Vec::with_capacity((bottom - top).max(0) as usize * padded_width * 3);
        for y in (top..bottom).filter(|_| held > 0) {
            // Rows the clamp would take from outside what is held are never read.
            let held_row = y
                .clamp(0, height as i64 - 1)
                .clamp(first as i64, (first + held) as i64 - 1);
            let row = &rgb[(held_row as usize - first) * width * 3..][..width * 3];
            for x in -reach..width as i64 + reach {
                let at = x.clamp(0, width as i64 - 1) as usize * 3;
                padded.extend_from_slice(&row[at..at + 3]);
            }
        }
        let offset = |(dx, dy): (i64, i64)| ((dy * padded_width as i64 + dx) * 3) as isize;
        Rows {
            padded,
            top,
            width,
            height,
            pair_offsets: PAIRS.map(offset),
            cross_offsets: CROSS_PAIRS.map(offset),
        }
    }

    fn col(&self, x: i64) -> usize {
        x.clamp(0, self.width as i64 - 1) as usize
    }

    /// Where pixel `(x, y)` lies in the copy (channel 0).
    fn index(&self, x: i64, y: i64) -> usize {
        let padded_width = (self.width + 2 * FILTER_REACH) as i64;
        (((y - self.top) * padded_width + x + FILTER_REACH as i64) * 3) as usize
    }

    fn at(&self, c: usize, x: i64, y: i64) -> i32 {
        self.padded[self.index(x, y) + c] as i32
    }

    fn luma(&self, x: i64, y: i64) -> i32 {
        self.at(0, x, y) + 2 * self.at(1, x, y) + self.at(2, x, y)
    }

    /// §7.5 step 1: the absolute horizontal and vertical Laplacians of L, `[g_h, g_v]`.
    fn laplacians(&self, x: i64, y: i64) -> [u32; 2] {
        let l = 2 * self.luma(x, y);
        [
            (l - self.luma(x - 1, y) - self.luma(x + 1, y)).unsigned_abs(),
            (l - self.luma(x, y - 1) - self.luma(x, y + 1)).unsigned_abs(),
        ]
    }

    /// `[H(x, y), V(x, y)]` for every pixel of image rows `rows`, row by row: the 5×5
    /// sums of `g_h` and `g_v` (their sum is the activity `A`).
    fn gradients(&self, rows: Range<usize>) -> Vec<[u32; 2]> {
        let (w, h) = (self.width as i64, self.height as i64);
        let g_first = rows.start.saturating_sub(2) as i64;
        let g_rows = (g_first..(rows.end as i64 + 2).min(h))
            .map(|y| (0..w).map(|x| self.laplacians(x, y)).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        let g_row = |y: i64| &g_rows[(y.clamp(0, h - 1) - g_first) as usize];
        let mut out = Vec::with_capacity(rows.len() * self.width);
        let mut columns = vec![[0u32; 2]; self.width];
        for y in rows {
            let y = y as i64;
            columns.iter_mut().for_each(|v| *v = [0, 0]);
            for dy in -2..=2 {
                columns.iter_mut().zip(g_row(y + dy)).for_each(|(v, g)| {
                    v[0] += g[0];
                    v[1] += g[1];
                });
            }
            out.extend((0..w).map(|x| {
                (-2..=2).fold([0, 0], |[a, b], dx| {
                    let c = columns[self.col(x + dx)];
                    [a + c[0], b + c[1]]
                })
            }));
        }
        out
    }

    /// §7.5 step 2: the features of channel `c` at `(x, y)`.
    fn features(&self, c: usize, x: i64, y: i64) -> [i32; FILTER_TAPS] {
        let at = self.index(x, y);
        let pixel = |channel: usize, offset: isize| {
            self.padded[at.wrapping_add_signed(offset) + channel] as i32
        };
        let a = pixel(c, 0);
        let mut f = [0i32; FILTER_TAPS];
        for (j, &o) in self.pair_offsets.iter().enumerate() {
            f[j] = pixel(c, o) + pixel(c, -o) - 2 * a;
        }
        let mut j = PAIRS.len();
        for other in [(c + 1) % 3, (c + 2) % 3] {
            let b = pixel(other, 0);
            f[j] = b - a;
            for (i, &o) in self.cross_offsets.iter().enumerate() {
                f[j + 1 + i] = pixel(other, o) + pixel(other, -o) - 2 * b;
            }
            j += 1 + CROSS_PAIRS.len();
        }
        f[j] = 1;
        f
    }
}

/// §7.5 step 1: the activity class of activity `a`, the number of thresholds at or below
/// it.
fn class_of(thresholds: &[u32], a: u32) -> usize {
    thresholds.partition_point(|&t| t <= a)
}

/// §7.5 step 1: the direction of a pixel whose 5×5 Laplacian sums are `[H, V]`: 1 where
/// the horizontal one is over twice the vertical, 2 the other way round, else 0.
fn direction_of([h, v]: [u32; 2]) -> usize {
    if h as u64 > 2 * v as u64 {
        1
    } else if v as u64 > 2 * h as u64 {
        2
    } else {
        0
    }
}

/// §7.5 step 1: the class `k = a·d + e` of activity class `a` and direction `e` among
/// `d` direction classes (with `d = 1` the direction does not count).
fn class_index(a: usize, d: usize, e: usize) -> usize {
    if d == 1 {
        a
    } else {
        a * d + e
    }
}

/// §7.5 step 1: the class of a pixel whose Laplacian sums are `hv`, by `thresholds` and
/// `d` direction classes.
fn class_by(thresholds: &[u32], d: usize, hv: [u32; 2]) -> usize {
    class_index(class_of(thresholds, hv[0] + hv[1]), d, direction_of(hv))
}

/// [`class_by`] the filter's own thresholds and direction classes.
fn pixel_class(params: &FilterParams, hv: [u32; 2]) -> usize {
    class_by(&params.thresholds, params.directions as usize, hv)
}

/// §7.5 step 3 for one channel of one pixel.
fn filtered(params: &FilterParams, w: &[i32; FILTER_TAPS], a: i32, f: &[i32; FILTER_TAPS]) -> u8 {
    let s: i64 = w.iter().zip(f).map(|(&w, &f)| w as i64 * f as i64).sum();
    let p = params.precision as u32;
    let delta = (s + (1i64 << (p - 1))) >> p;
    (a as i64 + delta).clamp(0, 255) as u8
}

/// Rows per parallel task of [`filter_rows`] and the fit.
const ROWS_PER_TASK: usize = 16;

/// The filtered image rows `rows` (RGB, full width) of an image `width × height`, from
/// its unfiltered rows `first ..` in `rgb`, which must hold every row within
/// [`FILTER_REACH`] of `rows` that lies in the image.
pub fn filter_rows(
    params: &FilterParams,
    rgb: &[u8],
    first: usize,
    (width, height): (usize, usize),
    rows: Range<usize>,
) -> Vec<u8> {
    let src = Rows::new(rgb, first, width, height);
    let starts: Vec<usize> = rows.clone().step_by(ROWS_PER_TASK).collect();
    let parts: Vec<Vec<u8>> = starts
        .into_par_iter()
        .map(|y0| {
            let task = y0..(y0 + ROWS_PER_TASK).min(rows.end);
            let gradients = if params.classes.len() == 1 {
                Vec::new()
            } else {
                src.gradients(task.clone())
            };
            let mut out = Vec::with_capacity(task.len() * width * 3);
            for (i, y) in task.enumerate() {
                for x in 0..width {
                    let class = gradients
                        .get(i * width + x)
                        .map_or(0, |&hv| pixel_class(params, hv));
                    for c in 0..3 {
                        let (x, y) = (x as i64, y as i64);
                        let f = src.features(c, x, y);
                        let w = &params.classes[class][c];
                        out.push(filtered(params, w, src.at(c, x, y), &f));
                    }
                }
            }
            out
        })
        .collect();
    parts.concat()
}

/// The whole image filtered.
pub fn filter_image(params: &FilterParams, image: &RgbImage) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let out = filter_rows(params, image.as_raw(), 0, (w, h), 0..h);
    RgbImage::from_raw(w as u32, h as u32, out).expect("one RGB pixel per pixel")
}

/// Filters a decode's bands as they come (top to bottom, full width): each band goes
/// out once the rows that its last rows read are in, so memory holds a band and a few
/// rows, not the image.
pub struct BandFilter<'a> {
    params: &'a FilterParams,
    width: usize,
    height: usize,
    /// Unfiltered rows from image row `held_from`.
    held: Vec<u8>,
    held_from: usize,
    /// Rows before this one have been handed on.
    done: usize,
}

impl<'a> BandFilter<'a> {
    pub fn new(params: &'a FilterParams, width: u32, height: u32) -> Self {
        BandFilter {
            params,
            width: width as usize,
            height: height as usize,
            held: Vec::new(),
            held_from: 0,
            done: 0,
        }
    }

    /// Takes the unfiltered rows `y ..` in `rgb` (the next ones), and returns the rows it
    /// can now filter: their first row and their pixels (none yet: an empty vector).
    pub fn push(&mut self, y: usize, rgb: &[u8]) -> (usize, Vec<u8>) {
        let row_bytes = self.width * 3;
        debug_assert_eq!(y, self.held_from + self.held.len() / row_bytes.max(1));
        self.held.extend_from_slice(rgb);
        let arrived = self.held_from + self.held.len() / row_bytes.max(1);
        let ready = if arrived == self.height {
            arrived
        } else {
            arrived.saturating_sub(FILTER_REACH)
        };
        let start = self.done;
        if ready <= start {
            return (start, Vec::new());
        }
        let out = filter_rows(
            self.params,
            &self.held,
            self.held_from,
            (self.width, self.height),
            start..ready,
        );
        self.done = ready;
        // Keep only the rows the next ones read.
        let keep_from = ready.saturating_sub(FILTER_REACH).max(self.held_from);
        self.held.drain(..(keep_from - self.held_from) * row_bytes);
        self.held_from = keep_from;
        (start, out)
    }
}

/// Columns of a fit's design matrix: the features, then the residual `r`.
const COLUMNS: usize = FILTER_TAPS + 1;

/// Normal equations of one class and channel: the Gram matrix of `[f, r]` over its
/// pixels (`Σ f fᵀ`, `Σ f r`, `Σ r²`), `r` the source less the decoded value.
#[derive(Clone)]
struct Normal {
    gram: [[f64; COLUMNS]; COLUMNS],
}

impl Normal {
    fn zero() -> Self {
        Normal {
            gram: [[0.0; COLUMNS]; COLUMNS],
        }
    }

    /// Adds `Mᵀ M` for the row-major `[rows, COLUMNS]` design matrix `m`, as one GEMM:
    /// the product at the GEMM's speed, not a loop per pixel.
    fn add_rows(&mut self, m: &[f64]) {
        let rows = m.len() / COLUMNS;
        if rows == 0 {
            return;
        }
        // SAFETY: `Mᵀ` (COLUMNS × rows, column stride COLUMNS) and `M` (rows × COLUMNS)
        // both lie inside `m`, and the COLUMNS × COLUMNS destination is `self.gram`, which
        // the inputs do not alias.
        unsafe {
            gemm::gemm(
                COLUMNS,
                COLUMNS,
                rows,
                self.gram.as_mut_ptr() as *mut f64,
                1,
                COLUMNS as isize,
                true,
                m.as_ptr(),
                COLUMNS as isize,
                1,
                m.as_ptr(),
                1,
                COLUMNS as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    fn merge(&mut self, other: &Normal) {
        for (a, b) in self
            .gram
            .iter_mut()
            .flatten()
            .zip(other.gram.iter().flatten())
        {
            *a += b;
        }
    }

    fn features_gram(&self) -> [[f64; FILTER_TAPS]; FILTER_TAPS] {
        std::array::from_fn(|i| std::array::from_fn(|j| self.gram[i][j]))
    }

    fn rhs(&self) -> [f64; FILTER_TAPS] {
        std::array::from_fn(|i| self.gram[i][FILTER_TAPS])
    }

    /// The least-squares coefficients (with a touch of ridge, so that a class of few or
    /// flat pixels still solves).
    fn solve(&self) -> [f64; FILTER_TAPS] {
        let mut a = self.features_gram();
        let ridge = 1e-6 * (0..FILTER_TAPS).map(|i| a[i][i]).sum::<f64>().max(1.0);
        (0..FILTER_TAPS).for_each(|i| a[i][i] += ridge);
        cholesky_solve(a, self.rhs())
    }

    /// How much the squared error changes with coefficients `w` (in pixel units): the
    /// quadratic form, rounding and clamping left out.
    fn change(&self, w: &[f64; FILTER_TAPS]) -> f64 {
        let g = self.features_gram();
        let quad: f64 = (0..FILTER_TAPS)
            .map(|i| w[i] * (0..FILTER_TAPS).map(|j| g[i][j] * w[j]).sum::<f64>())
            .sum();
        let rhs = self.rhs();
        quad - 2.0 * (0..FILTER_TAPS).map(|i| w[i] * rhs[i]).sum::<f64>()
    }
}

/// Solves `a x = b` for a symmetric positive definite `a`.
fn cholesky_solve(
    mut a: [[f64; FILTER_TAPS]; FILTER_TAPS],
    b: [f64; FILTER_TAPS],
) -> [f64; FILTER_TAPS] {
    let n = FILTER_TAPS;
    for j in 0..n {
        let d = a[j][j] - (0..j).map(|k| a[j][k] * a[j][k]).sum::<f64>();
        if d <= 0.0 {
            return [0.0; FILTER_TAPS];
        }
        a[j][j] = d.sqrt();
        for i in j + 1..n {
            let s = a[i][j] - (0..j).map(|k| a[i][k] * a[j][k]).sum::<f64>();
            a[i][j] = s / a[j][j];
        }
    }
    let mut y = [0.0; FILTER_TAPS];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| a[i][k] * y[k]).sum::<f64>()) / a[i][i];
    }
    let mut x = [0.0; FILTER_TAPS];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| a[k][i] * x[k]).sum::<f64>()) / a[i][i];
    }
    x
}

/// Precisions the encoder tries.
const PRECISIONS: Range<u8> = 4..9;
/// Class counts the encoder tries (each partition a union of the finest one's classes).
const CLASS_COUNTS: [usize; 4] = [1, 2, 4, MAX_CLASSES];

/// Thresholds at the `i / 8` quantiles of the activity (`i = 1 … 7`), without repeats
/// and without 0 (which every pixel reaches).
fn quantile_thresholds(activity: &[u32]) -> Vec<u32> {
    let mut sorted = activity.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<u32> = (1..MAX_CLASSES)
        .map(|i| sorted[i * sorted.len() / MAX_CLASSES])
        .filter(|&t| t > 0)
        .collect();
    out.dedup();
    out
}

/// The thresholds of a partition into at most `q` classes, taken from the finest ones.
fn coarser(fine: &[u32], q: usize) -> Vec<u32> {
    if q <= 1 || fine.is_empty() {
        return Vec::new();
    }
    if q > fine.len() {
        return fine.to_vec();
    }
    let mut out: Vec<u32> = (1..q).map(|i| fine[i * (fine.len() + 1) / q - 1]).collect();
    out.dedup();
    out
}

/// The filter of least `ΔD + λ·R` for `decoded` against `source` (squared error summed
/// over pixels and channels on the 8-bit scale, `R` the section's bits), among those of
/// at most `room` bytes, and the image it makes; `None` when no filter lowers that sum.
pub fn fit(
    source: &RgbImage,
    decoded: &RgbImage,
    lambda: f64,
    room: usize,
) -> Option<(FilterParams, RgbImage)> {
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    let src = Rows::new(decoded.as_raw(), 0, w, h);
    let gradients = src.gradients(0..h);
    let activity: Vec<u32> = gradients.iter().map(|g| g[0] + g[1]).collect();
    let fine = quantile_thresholds(&activity);
    let normals = normal_equations(&src, source.as_raw(), &gradients, &fine);
    // The best option so far: its cost, the filter and its section's bits.
    let mut best: Option<(f64, FilterParams, f64)> = None;
    let mut tried: Vec<(Vec<u32>, u8)> = Vec::new();
    for (q, d) in CLASS_COUNTS
        .into_iter()
        .flat_map(|q| DIRECTION_COUNTS.map(|d| (q, d)))
    {
        let thresholds = coarser(&fine, q);
        if tried.contains(&(thresholds.clone(), d)) {
            continue;
        }
        tried.push((thresholds.clone(), d));
        let merged = merge_classes(&normals, &fine, &thresholds, d);
        let solved: Vec<[[f64; FILTER_TAPS]; 3]> = merged
            .iter()
            .map(|class| std::array::from_fn(|c| class[c].solve()))
            .collect();
        for precision in PRECISIONS {
            let (params, change) = quantised(&merged, &solved, &thresholds, d, precision);
            let Ok(bytes) = params.to_bytes(FORMAT_VERSION) else {
                continue;
            };
            if bytes.len() > room {
                continue;
            }
            let bits = 8.0 * bytes.len() as f64;
            let cost = change + lambda * bits;
            if best.as_ref().is_none_or(|(b, _, _)| cost < *b) {
                best = Some((cost, params, bits));
            }
        }
    }
    let (_, params, bits) = best.filter(|(cost, _, _)| *cost < 0.0)?;
    // The estimate leaves out rounding and clamping: keep the filter only if it pays.
    let filtered = filter_image(&params, decoded);
    let gain = squared_error(source, decoded) - squared_error(source, &filtered);
    (gain > lambda * bits).then_some((params, filtered))
}

/// The direction classes the fit starts from (§7.5's largest `d`).
const FINE_DIRECTIONS: usize = 3;

/// The normal equations of every finest class and channel, the class `a·3 + e` of
/// activity class `a` by `fine` and direction `e`, summed over the image in a fixed order
/// of row blocks (the same floats whatever the threads).
fn normal_equations(
    src: &Rows,
    source: &[u8],
    gradients: &[[u32; 2]],
    fine: &[u32],
) -> Vec<[Normal; 3]> {
    let classes = (fine.len() + 1) * FINE_DIRECTIONS;
    let (w, h) = (src.width, src.height);
    let starts: Vec<usize> = (0..h).step_by(ROWS_PER_TASK).collect();
    let blocks: Vec<Vec<[Normal; 3]>> = starts
        .into_par_iter()
        .map(|y0| {
            // The block's design matrix of each class and channel, then its Gram matrix.
            let mut rows: Vec<[Vec<f64>; 3]> = vec![Default::default(); classes];
            for y in y0..(y0 + ROWS_PER_TASK).min(h) {
                for x in 0..w {
                    let class = class_by(fine, FINE_DIRECTIONS, gradients[y * w + x]);
                    for (c, m) in rows[class].iter_mut().enumerate() {
                        let (xi, yi) = (x as i64, y as i64);
                        let r = source[(y * w + x) * 3 + c] as f64 - src.at(c, xi, yi) as f64;
                        m.extend(src.features(c, xi, yi).map(|f| f as f64));
                        m.push(r);
                    }
                }
            }
            rows.iter()
                .map(|per_channel| {
                    std::array::from_fn(|c| {
                        let mut normal = Normal::zero();
                        normal.add_rows(&per_channel[c]);
                        normal
                    })
                })
                .collect::<Vec<[Normal; 3]>>()
        })
        .collect();
    let mut total = vec![[Normal::zero(), Normal::zero(), Normal::zero()]; classes];
    for block in &blocks {
        for (t, b) in total.iter_mut().zip(block) {
            (0..3).for_each(|c| t[c].merge(&b[c]));
        }
    }
    total
}

/// The normal equations of the partition by `thresholds` and `directions` (1 or 3), from
/// the finest one's.
fn merge_classes(
    fine_normals: &[[Normal; 3]],
    fine: &[u32],
    thresholds: &[u32],
    directions: u8,
) -> Vec<[Normal; 3]> {
    let d = directions as usize;
    let zero = [Normal::zero(), Normal::zero(), Normal::zero()];
    let mut out = vec![zero; (thresholds.len() + 1) * d];
    for (i, normal) in fine_normals.iter().enumerate() {
        let (a, e) = (i / FINE_DIRECTIONS, i % FINE_DIRECTIONS);
        // Fine activity class a holds activities from its lower threshold up.
        let lowest = if a == 0 { 0 } else { fine[a - 1] };
        let class = class_index(class_of(thresholds, lowest), d, e);
        (0..3).for_each(|c| out[class][c].merge(&normal[c]));
    }
    out
}

/// The solved coefficients rounded at `precision`, and the squared-error change the
/// normal equations give for them.
fn quantised(
    normals: &[[Normal; 3]],
    solved: &[[[f64; FILTER_TAPS]; 3]],
    thresholds: &[u32],
    directions: u8,
    precision: u8,
) -> (FilterParams, f64) {
    let scale = (1u32 << precision) as f64;
    let mut change = 0.0;
    let classes: Vec<ClassCoefficients> = normals
        .iter()
        .zip(solved)
        .map(|(normal, w)| {
            std::array::from_fn(|c| {
                let ints: [i32; FILTER_TAPS] = std::array::from_fn(|j| {
                    (w[c][j] * scale)
                        .round()
                        .clamp(-(MAX_COEFFICIENT as f64), MAX_COEFFICIENT as f64)
                        as i32
                });
                change += normal[c].change(&ints.map(|v| v as f64 / scale));
                ints
            })
        })
        .collect();
    let params = FilterParams {
        precision,
        thresholds: thresholds.to_vec(),
        directions,
        classes,
    };
    (params, change)
}

/// Squared error summed over pixels and channels, on the 8-bit scale.
pub fn squared_error(a: &RgbImage, b: &RgbImage) -> f64 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

/// Adds the filter of [`fit`] to a complete `file` of the newest format whose decode is
/// `decoded`, growing it by at most `room` bytes; the file as it is when no filter pays.
pub fn add_fitted_filter(
    file: Vec<u8>,
    source: &RgbImage,
    decoded: &RgbImage,
    lambda: f64,
    room: usize,
) -> Result<Vec<u8>> {
    // A section of 128 bytes or more takes a second byte of varint in the header.
    let room = if room > 128 { room - 1 } else { room };
    match fit(source, decoded, lambda, room) {
        Some((params, _)) => crate::bitstream::with_filter(&file, Some(&params)),
        None => Ok(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy_pair() -> (RgbImage, RgbImage) {
        // A smooth source, and a decode with a checkerboard of ±6 on it.
        let source = RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(3 * x + 2 * y) as u8, (100 + x) as u8, (200 - 2 * y) as u8])
        });
        let mut decoded = source.clone();
        for (x, y, p) in decoded.enumerate_pixels_mut() {
            let d: i32 = if (x + y) % 2 == 0 { 6 } else { -6 };
            p.0 = p.0.map(|v| (v as i32 + d).clamp(0, 255) as u8);
        }
        (source, decoded)
    }

    #[test]
    fn the_fitted_filter_takes_out_noise_it_can_see() {
        let (source, decoded) = noisy_pair();
        let (params, filtered) = fit(&source, &decoded, 1.0, 1000).expect("a filter pays here");
        assert_eq!(filtered, filter_image(&params, &decoded));
        let before = squared_error(&source, &decoded);
        let after = squared_error(&source, &filtered);
        assert!(after < 0.2 * before, "{before} → {after}");
        // Nothing to gain on a perfect decode, and no room: no filter.
        assert!(fit(&source, &source, 1.0, 1000).is_none());
        assert!(fit(&source, &decoded, 1.0, 3).is_none());
    }

    #[test]
    fn held_rows_read_as_the_clamp_to_the_image_says() {
        for (w, h) in [(1, 1), (2, 5), (7, 3), (9, 11)] {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
            let clamped = |c: usize, x: i64, y: i64| {
                let (x, y) = (x.clamp(0, w as i64 - 1), y.clamp(0, h as i64 - 1));
                rgb[(y as usize * w + x as usize) * 3 + c] as i32
            };
            let reach = FILTER_REACH as i64;
            // All rows held, and rows 1..h−1 alone (reads stay within reach of them).
            for (first, held) in [(0, h), (1.min(h - 1), h.saturating_sub(2).max(1))] {
                let rows = Rows::new(&rgb[first * w * 3..(first + held) * w * 3], first, w, h);
                for y in first..first + held {
                    for x in 0..w {
                        let (x, y) = (x as i64, y as i64);
                        for c in 0..3 {
                            for dy in -reach..=reach {
                                for dx in -reach..=reach {
                                    let read = rows.at(c, x + dx, y + dy);
                                    let inside = (first as i64..(first + held) as i64)
                                        .contains(&(y + dy).clamp(0, h as i64 - 1));
                                    if inside {
                                        assert_eq!(read, clamped(c, x + dx, y + dy));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn band_by_band_filtering_equals_the_whole_image() {
        let (source, decoded) = noisy_pair();
        let (params, _) = fit(&source, &decoded, 0.0, 10_000).unwrap();
        let whole = filter_image(&params, &decoded);
        for band in [1, 2, 4, 7, 30] {
            let mut streaming = BandFilter::new(&params, 40, 30);
            let mut out = Vec::new();
            for (i, rows) in decoded.as_raw().chunks(band * 40 * 3).enumerate() {
                let (y, filtered) = streaming.push(i * band, rows);
                assert_eq!(y * 40 * 3, out.len());
                out.extend(filtered);
            }
            assert_eq!(out, whole.as_raw().clone(), "bands of {band} rows");
        }
    }

    #[test]
    fn classes_partition_the_activities_by_their_thresholds() {
        assert_eq!(class_of(&[], 5), 0);
        assert_eq!(class_of(&[3, 9], 2), 0);
        assert_eq!(class_of(&[3, 9], 3), 1);
        assert_eq!(class_of(&[3, 9], 9), 2);
        let fine = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(coarser(&fine, 2), vec![4]);
        assert_eq!(coarser(&fine, 4), vec![2, 4, 6]);
        assert_eq!(coarser(&fine, 8), fine.to_vec());
        assert_eq!(coarser(&[5], 4), vec![5]);
    }

    #[test]
    fn a_direction_is_a_laplacian_sum_over_twice_the_other() {
        assert_eq!(direction_of([201, 100]), 1);
        assert_eq!(direction_of([200, 100]), 0);
        assert_eq!(direction_of([100, 201]), 2);
        assert_eq!(direction_of([0, 0]), 0);
        assert_eq!(direction_of([u32::MAX, u32::MAX / 2]), 1);
        let params = |directions| FilterParams {
            precision: 6,
            thresholds: vec![50],
            directions,
            classes: vec![[[0; FILTER_TAPS]; 3]; 2 * directions as usize],
        };
        // k = a·d + e.
        assert_eq!(pixel_class(&params(3), [10, 30]), 2);
        assert_eq!(pixel_class(&params(3), [100, 30]), 4);
        assert_eq!(pixel_class(&params(1), [100, 30]), 1);
    }
}
