//! The network's configuration. It is stored inside every model file, so a model file
//! describes itself completely.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schedule::LayerSpec;
use crate::schedule::MAX_LAYERS;

/// One Discrete Distribution Layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerConfig {
    /// Candidates per cell.
    pub k: u32,
    /// A cell is `2^cell_log2` pixels of the level's grid on a side.
    pub cell_log2: u8,
}

/// One rung of the coarse-to-fine ladder: a resolution and the layers that work at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelConfig {
    /// The level works at the image downsampled by `2^scale_log2`.
    pub scale_log2: u8,
    /// Feature channels at this level.
    pub channels: usize,
    /// The level's features live on its grid downsampled by `2^s2d_log2` (space to
    /// depth): dense convs on fewer, deeper pixels run far faster than on thin full-size
    /// maps. Each cell must cover whole feature pixels.
    #[serde(default)]
    pub s2d_log2: u8,
    pub layers: Vec<LayerConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Levels from coarsest to finest; each is twice the resolution of the one before.
    pub levels: Vec<LevelConfig>,
}

/// One rung of a ladder written out by hand: a level whose layers all share K and cell size.
#[derive(Debug, Clone, Copy)]
pub struct Rung {
    pub scale_log2: u8,
    pub s2d_log2: u8,
    pub channels: usize,
    pub layers: usize,
    pub k: u32,
    pub cell_log2: u8,
}

impl Rung {
    fn level(&self) -> LevelConfig {
        LevelConfig {
            scale_log2: self.scale_log2,
            channels: self.channels,
            s2d_log2: self.s2d_log2,
            layers: vec![
                LayerConfig {
                    k: self.k,
                    cell_log2: self.cell_log2,
                };
                self.layers
            ],
        }
    }
}

impl ModelConfig {
    /// A ladder of rungs, coarsest first.
    pub fn ladder(rungs: &[Rung]) -> Self {
        ModelConfig {
            levels: rungs.iter().map(Rung::level).collect(),
        }
    }

    /// The default ladder (model v7's): cheap coarse levels with many layers, then eleven
    /// full-resolution layers for detail, which rate-distortion choices leave mostly kept
    /// at low rates: five with 8×8-pixel cells, three with 4×4 and three with 2×2, for the
    /// detail that high rates pay for. Models v4 to v6 had 64 candidates in every layer
    /// (their ladder is `docs/ladder-v4.json`).
    pub fn default_codec() -> Self {
        let rung = |scale_log2, s2d_log2, channels, layers, cell_log2| Rung {
            scale_log2,
            s2d_log2,
            channels,
            layers,
            k: 64,
            cell_log2,
        };
        let mut config = Self::ladder(&[
            rung(4, 0, 64, 2, 1),
            rung(3, 0, 64, 3, 1),
            rung(2, 0, 64, 3, 2),
            rung(1, 1, 64, 3, 2),
            rung(0, 1, 48, 5, 3),
        ]);
        let finest = config.levels.last_mut().expect("the ladder has levels");
        // Model v7: 256 candidates in the five 8×8-pixel full-resolution layers, where each
        // doubling of K bought 0.1–0.2 dB at the middle rates (docs/experiments.md).
        finest.layers.iter_mut().for_each(|l| l.k = 256);
        for cell_log2 in [2, 1] {
            finest.layers.extend([LayerConfig { k: 64, cell_log2 }; 3]);
        }
        config
    }

    /// A very small ladder for tests.
    pub fn tiny() -> Self {
        let rung = |scale_log2, s2d_log2, layers, k, cell_log2| Rung {
            scale_log2,
            s2d_log2,
            channels: 8,
            layers,
            k,
            cell_log2,
        };
        Self::ladder(&[
            rung(2, 0, 2, 4, 0),
            rung(1, 0, 1, 8, 1),
            rung(0, 1, 1, 4, 1),
        ])
    }

    /// Every layer as the bitstream describes it, coarsest first.
    pub fn schedule(&self) -> Vec<LayerSpec> {
        self.levels
            .iter()
            .flat_map(|level| {
                level.layers.iter().map(move |layer| LayerSpec {
                    k: layer.k,
                    scale_log2: level.scale_log2,
                    cell_log2: layer.cell_log2,
                })
            })
            .collect()
    }

    pub fn layer_count(&self) -> usize {
        self.levels.iter().map(|l| l.layers.len()).sum()
    }

    /// Side of the largest cell in image pixels: tiles are padded to a multiple of it.
    pub fn granule(&self) -> u32 {
        crate::schedule::granule(&self.schedule())
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidModel(msg));
        if self.levels.is_empty() {
            return bad("no levels".into());
        }
        for pair in self.levels.windows(2) {
            if pair[0].scale_log2 != pair[1].scale_log2 + 1 {
                return bad("each level must double the resolution of the one before".into());
            }
        }
        if self
            .levels
            .iter()
            .any(|l| l.channels == 0 || l.layers.is_empty())
        {
            return bad("every level needs channels and at least one layer".into());
        }
        for level in &self.levels {
            if level.layers.iter().any(|l| l.cell_log2 < level.s2d_log2) {
                return bad("a cell must cover whole space-to-depth feature pixels".into());
            }
        }
        for pair in self.levels.windows(2) {
            if !(pair[0].s2d_log2..=pair[0].s2d_log2 + 1).contains(&pair[1].s2d_log2) {
                return bad("s2d may grow by at most one from a level to the next".into());
            }
        }
        let n = self.layer_count();
        if n > MAX_LAYERS {
            return bad(format!("{n} layers, at most {MAX_LAYERS}"));
        }
        self.schedule()
            .iter()
            .try_for_each(LayerSpec::validate)
            .map_err(|e| Error::InvalidModel(e.to_string()))
    }
}
