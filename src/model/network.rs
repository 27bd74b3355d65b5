//! The coarse-to-fine DDN: a ladder of levels, each a stack of (residual block, DDL)
//! layers, with features carried up the ladder by conv + pixel shuffle.
//!
//! Per layer: `feat += conv3x3(silu(conv3x3([feat, image])))`, then the DDL makes K
//! candidates on the current image and each cell keeps one. The kept image is detached
//! where it re-enters the network (bilinear upsampling has no backward in candle, and the
//! features still carry every gradient between layers).

use candle_core::{DType, Device, Tensor, Var};

use super::config::ModelConfig;
use super::conv::Then;
use super::ddl::{self, Candidates, LayerShape};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A trainable tensor with its name in the model file.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub var: Var,
}

#[derive(Debug, Clone)]
struct Conv {
    weight: Var,
    bias: Var,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::conv::conv_same_biased(x, &self.weight, &self.bias)
    }

    /// [`Conv::forward`] fused for coding (see [`super::conv::conv_for_coding`]).
    fn for_coding(&self, a: &Tensor, b: Option<&Tensor>, then: Then) -> Result<Tensor> {
        super::conv::conv_for_coding(a, b, &self.weight, &self.bias, then)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    conv1: Conv,
    conv2: Conv,
    /// `[3K, C, 1, 1]`, no bias: node `k` owns rows `3k..3k+3`.
    head: Var,
    k: usize,
    cell: usize,
}

#[derive(Debug, Clone)]
struct Level {
    scale_log2: u8,
    /// Space-to-depth factor of the features.
    s2d: usize,
    layers: Vec<Layer>,
    /// Into the next level: a conv to `4·C'` channels and a pixel shuffle ×2 — or, when
    /// the next level's space-to-depth factor doubles, a conv to `C'` at the same size.
    up: Option<(Conv, usize)>,
}

/// How each layer picks its candidates during a walk.
pub trait Chooser {
    /// Given all candidates of layer `layer`, the chosen index of every cell, `[B, cells]`
    /// flattened.
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> Result<Vec<u32>>;

    /// Whether the walk goes on after layer `layer`: an encoder whose last layers stopped
    /// paying for their bits may end it there.
    fn goes_on_after(&self, _layer: usize) -> bool {
        true
    }

    /// What a coding walk does with layer `layer`'s [`LayerInput`] once the layer is
    /// chosen: an encoder that chooses its file's last layer again makes the file's image
    /// from the kept input instead of walking again.
    fn keeps_input_of(&self, _layer: usize, _input: &LayerInput) -> KeepInput {
        KeepInput::AsBefore
    }
}

/// [`Chooser::keeps_input_of`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepInput {
    /// Keep this layer's input in place of the one kept before.
    This,
    /// Keep none (the one kept before is of no more use).
    Nothing,
    /// Leave what is kept as it is.
    AsBefore,
}

/// What one layer's chosen image is made from in a coding walk: the features its head
/// reads and the image before it.
#[derive(Debug, Clone)]
pub struct LayerInput {
    pub layer: usize,
    pub feat: Tensor,
    pub image: Tensor,
    pub shape: LayerShape,
}

impl LayerInput {
    /// How many floats it holds.
    pub fn floats(&self) -> usize {
        self.feat.elem_count() + self.image.elem_count()
    }
}

/// Where a walk's indices come from.
pub enum Walk<'a> {
    /// Pick among all K candidates.
    Choose(&'a mut dyn Chooser),
    /// Replay known indices (`[layer][B·cells]`): only the chosen candidates are computed.
    Replay(&'a [Vec<u32>]),
}

/// What a walk produced.
pub struct WalkResult {
    /// The chosen image after each layer, `[B,3,h_l,w_l]`, with gradient, for a training
    /// walk; a coding walk keeps only the last (the others are dozens of MB it never reads).
    pub images: Vec<Tensor>,
    /// The indices of each layer, `[B·cells]`.
    pub indices: Vec<Vec<u32>>,
    /// The layer input the chooser kept last ([`Chooser::keeps_input_of`]); none in a
    /// replay or a training walk.
    pub input: Option<LayerInput>,
}

#[derive(Debug, Clone)]
pub struct Network {
    config: ModelConfig,
    init: Var,
    levels: Vec<Level>,
    /// Every parameter under its name in the model file, in construction order.
    params: Vec<Param>,
    device: Device,
}

/// Makes the network's parameters, drawing each uniformly from the one seeded stream,
/// and lists each under its name in the model file as it is made: the parameter list is
/// the construction order, never kept by hand.
struct ParamMaker<'a> {
    rng: Rng,
    device: &'a Device,
    made: Vec<Param>,
}

impl ParamMaker<'_> {
    /// A tensor drawn uniformly in ±`bound`.
    fn uniform(&mut self, name: String, shape: &[usize], bound: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| self.rng.range(-bound, bound) as f32)
            .collect();
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, self.device)?)?;
        self.made.push(Param {
            name,
            var: var.clone(),
        });
        Ok(var)
    }

    fn zeros(&mut self, name: String, len: usize) -> Result<Var> {
        let var = Var::from_tensor(&Tensor::zeros(len, DType::F32, self.device)?)?;
        self.made.push(Param {
            name,
            var: var.clone(),
        });
        Ok(var)
    }

    /// A `ksize × ksize` conv, He-style uniform weights scaled by `gain`, zero bias.
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        ksize: usize,
        gain: f64,
    ) -> Result<Conv> {
        let fan_in = (cin * ksize * ksize) as f64;
        Ok(Conv {
            weight: self.uniform(
                format!("{name}.weight"),
                &[cout, cin, ksize, ksize],
                gain * (3.0 / fan_in).sqrt(),
            )?,
            bias: self.zeros(format!("{name}.bias"), cout)?,
        })
    }
}

impl Network {
    /// A freshly initialised network; the same seed gives the same weights.
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut make = ParamMaker {
            rng: Rng::derive(seed, &[0x1_417]),
            device,
            made: Vec::new(),
        };
        let c0 = config.levels[0].channels;
        let init = make.uniform("init".into(), &[1, c0, 1, 1], 1.0)?;
        let mut levels = Vec::new();
        for (i, lc) in config.levels.iter().enumerate() {
            let c = lc.channels;
            let s2d = 1usize << lc.s2d_log2;
            let image_channels = 3 * s2d * s2d;
            let mut layers = Vec::new();
            for (j, layer) in lc.layers.iter().enumerate() {
                let k = layer.k as usize;
                let name = format!("level{i}.layer{j}");
                layers.push(Layer {
                    conv1: make.conv(
                        &format!("{name}.conv1"),
                        c + image_channels,
                        c,
                        3,
                        2.0f64.sqrt(),
                    )?,
                    // A small last conv keeps each residual block near the identity at first.
                    conv2: make.conv(&format!("{name}.conv2"), c, c, 3, 0.1)?,
                    head: make.uniform(
                        format!("{name}.head"),
                        &[image_channels * k, c, 1, 1],
                        0.5 / (c as f64).sqrt(),
                    )?,
                    k,
                    cell: 1 << layer.cell_log2,
                });
            }
            let up = match config.levels.get(i + 1) {
                Some(next) => {
                    let shuffle = if next.s2d_log2 > lc.s2d_log2 { 1 } else { 2 };
                    let cout = shuffle * shuffle * next.channels;
                    Some((
                        make.conv(&format!("level{i}.up"), c, cout, 3, 1.0)?,
                        shuffle,
                    ))
                }
                None => None,
            };
            levels.push(Level {
                scale_log2: lc.scale_log2,
                s2d,
                layers,
                up,
            });
        }
        Ok(Network {
            config: config.clone(),
            init,
            levels,
            params: make.made,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every trainable tensor with its stable name, in the order they were made.
    pub fn params(&self) -> Vec<Param> {
        self.params.clone()
    }

    /// The head of every layer in walk order: the K output nodes that Split-and-Prune edits.
    pub fn heads(&self) -> Vec<Var> {
        self.layers().map(|(_, l)| l.head.clone()).collect()
    }

    fn layers(&self) -> impl Iterator<Item = (&Level, &Layer)> {
        self.levels
            .iter()
            .flat_map(|level| level.layers.iter().map(move |layer| (level, layer)))
    }

    /// Warm start: copies every tensor whose name and shape match a parameter and leaves
    /// the rest as initialised. Returns how many parameters were copied, of how many.
    pub fn load_matching(
        &self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<(usize, usize)> {
        let params = self.params();
        let mut copied = 0;
        for p in &params {
            if let Some(t) = tensors.get(&p.name).filter(|t| t.dims() == p.var.dims()) {
                p.var
                    .set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
                copied += 1;
            }
        }
        Ok((copied, params.len()))
    }

    /// Replaces every parameter with the tensor of the same name.
    pub fn load_tensors(&self, tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for p in self.params() {
            let t = tensors
                .get(&p.name)
                .ok_or_else(|| Error::InvalidModel(format!("missing tensor {}", p.name)))?;
            if t.dims() != p.var.dims() {
                return Err(Error::InvalidModel(format!(
                    "tensor {} has shape {:?}, expected {:?}",
                    p.name,
                    t.dims(),
                    p.var.dims()
                )));
            }
            p.var
                .set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }

    /// The shape of layer `layer` for a batch of `batch` images of `height × width` pixels.
    pub fn layer_shape(
        &self,
        layer: usize,
        batch: usize,
        height: usize,
        width: usize,
    ) -> LayerShape {
        let (level, l) = self.layers().nth(layer).expect("layer in range");
        LayerShape {
            batch,
            k: l.k,
            height: height >> level.scale_log2,
            width: width >> level.scale_log2,
            cell: l.cell,
            s2d: level.s2d,
        }
    }

    /// Targets of the first `n` layers: `batch` (`[B,3,H,W]`) area-downsampled to each
    /// layer's grid.
    pub fn layer_targets(&self, batch: &Tensor, n: usize) -> Result<Vec<Tensor>> {
        self.config.schedule()[..n]
            .iter()
            .map(|spec| {
                let f = 1usize << spec.scale_log2;
                Ok(if f == 1 {
                    batch.clone()
                } else {
                    batch.avg_pool2d(f)?
                })
            })
            .collect()
    }

    /// Walks the first `max_layers` layers for a batch of `batch` images of
    /// `height × width` pixels (multiples of the granule), for coding: every layer's
    /// outputs are detached, so a long walk holds no autograd graph and memory stays flat.
    pub fn walk(
        &self,
        batch: usize,
        height: usize,
        width: usize,
        max_layers: usize,
        how: Walk,
    ) -> Result<WalkResult> {
        self.walk_with(batch, height, width, max_layers, how, false)
    }

    /// [`Network::walk`] keeping the autograd graph, for training: the loss flows through
    /// the chosen candidates only.
    pub fn training_walk(
        &self,
        batch: usize,
        height: usize,
        width: usize,
        max_layers: usize,
        how: Walk,
    ) -> Result<WalkResult> {
        self.walk_with(batch, height, width, max_layers, how, true)
    }

    /// The image layer `input.layer` chooses with `indices` (`[B·cells]`): bit for bit
    /// what a coding walk or a replay makes from the same input.
    pub fn chosen_image(&self, input: &LayerInput, indices: &[u32]) -> Result<Tensor> {
        let (_, layer) = self.layers().nth(input.layer).expect("layer in range");
        ddl::replay_chosen_direct(&input.feat, &layer.head, &input.image, indices, input.shape)
    }

    fn walk_with(
        &self,
        batch: usize,
        height: usize,
        width: usize,
        max_layers: usize,
        mut how: Walk,
        track_grad: bool,
    ) -> Result<WalkResult> {
        let first = &self.levels[0];
        let (h0, w0) = (height >> first.scale_log2, width >> first.scale_log2);
        let mut feat = self
            .init
            .as_tensor()
            .broadcast_as((
                batch,
                self.config.levels[0].channels,
                h0 / first.s2d,
                w0 / first.s2d,
            ))?
            .contiguous()?;
        let mut image = Tensor::zeros((batch, 3, h0, w0), DType::F32, &self.device)?;
        let mut result = WalkResult {
            images: Vec::new(),
            indices: Vec::new(),
            input: None,
        };
        for level in &self.levels {
            for layer in &level.layers {
                let n = result.indices.len();
                if n == max_layers {
                    break;
                }
                // The image is detached, so the copy without gradient serves training too.
                let pixels = super::shuffle::pixel_unshuffle(&image, level.s2d)?;
                feat = if track_grad {
                    let hidden = layer.conv1.forward(&Tensor::cat(&[&feat, &pixels], 1)?)?;
                    (&feat + layer.conv2.forward(&hidden.silu()?)?)?
                } else {
                    // The same arithmetic fused into the convs, with no graph to keep.
                    let hidden = layer.conv1.for_coding(&feat, Some(&pixels), Then::Silu)?;
                    layer.conv2.for_coding(&hidden, None, Then::AddTo(&feat))?
                };
                if !track_grad {
                    feat = feat.detach();
                }
                let shape = self.layer_shape(n, batch, height, width);
                let input = LayerInput {
                    layer: n,
                    feat: feat.clone(),
                    image: image.clone(),
                    shape,
                };
                let (chosen, indices) = match &mut how {
                    Walk::Replay(all) if track_grad => {
                        let idx = all[n].clone();
                        (
                            ddl::replay_chosen(&feat, &layer.head, &image, &idx, shape)?,
                            idx,
                        )
                    }
                    // Coding: encoder and decoder make the chosen pixels the same way,
                    // so they agree exactly.
                    Walk::Replay(all) => (
                        ddl::replay_chosen_direct(&feat, &layer.head, &image, &all[n], shape)?,
                        all[n].clone(),
                    ),
                    Walk::Choose(chooser) => {
                        let cands = Candidates::new(&feat, &layer.head, &image, shape)?;
                        let idx = chooser.choose(n, &cands)?;
                        let chosen = if track_grad {
                            // Training: the loss flows through the chosen candidates
                            // only, recomputed on their own.
                            ddl::replay_chosen(&feat, &layer.head, &image, &idx, shape)?
                        } else {
                            ddl::replay_chosen_direct(&feat, &layer.head, &image, &idx, shape)?
                        };
                        (chosen, idx)
                    }
                };
                image = chosen.detach();
                if !track_grad {
                    result.images.clear();
                }
                result
                    .images
                    .push(if track_grad { chosen } else { image.clone() });
                result.indices.push(indices);
                if let Walk::Choose(chooser) = &how {
                    if !track_grad {
                        match chooser.keeps_input_of(n, &input) {
                            KeepInput::This => result.input = Some(input),
                            KeepInput::Nothing => result.input = None,
                            KeepInput::AsBefore => {}
                        }
                    }
                    if !chooser.goes_on_after(n) {
                        return Ok(result);
                    }
                }
            }
            if result.indices.len() == max_layers {
                break;
            }
            if let Some((up, shuffle)) = &level.up {
                feat = up.forward(&feat)?;
                // Training needs candle's, which has a gradient.
                feat = if track_grad && *shuffle > 1 {
                    candle_nn::ops::pixel_shuffle(&feat, *shuffle)?
                } else {
                    super::shuffle::pixel_shuffle(&feat, *shuffle)?
                };
                let (_, _, h, w) = image.dims4()?;
                image = image.upsample_bilinear2d(2 * h, 2 * w, false)?;
            }
        }
        Ok(result)
    }
}
