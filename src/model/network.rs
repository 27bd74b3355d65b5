//! The coarse-to-fine DDN: a ladder of levels, each a stack of (residual block, DDL)
//! layers, with features carried up the ladder by conv + pixel shuffle.
//!
//! Per layer: `feat += conv3x3(silu(conv3x3([feat, image])))`, then the DDL makes K
//! candidates on the current image and each cell keeps one. The kept image is detached
//! where it re-enters the network (bilinear upsampling has no backward in candle, and the
//! features still carry every gradient between layers).

use candle_core::{DType, Device, Tensor, Var};

use super::config::ModelConfig;
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
        let y = super::conv::conv_same(x, &self.weight)?;
        let bias = self.bias.as_tensor().reshape((1, (), 1, 1))?;
        Ok(y.broadcast_add(&bias)?)
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
    /// The chosen image after each layer, `[B,3,h_l,w_l]`, with gradient.
    pub images: Vec<Tensor>,
    /// The indices of each layer, `[B·cells]`.
    pub indices: Vec<Vec<u32>>,
}

#[derive(Debug, Clone)]
pub struct Network {
    config: ModelConfig,
    init: Var,
    levels: Vec<Level>,
    device: Device,
    /// Keep the autograd graph through a walk (training). Off, every layer's outputs are
    /// detached, so a long walk holds no graph and memory stays flat.
    track_grad: bool,
}

/// Draws weights uniformly in ±`bound`.
fn uniform_var(rng: &mut Rng, shape: &[usize], bound: f64, device: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.range(-bound, bound) as f32).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?)
}

fn new_conv(
    rng: &mut Rng,
    cin: usize,
    cout: usize,
    ksize: usize,
    gain: f64,
    device: &Device,
) -> Result<Conv> {
    let fan_in = (cin * ksize * ksize) as f64;
    Ok(Conv {
        weight: uniform_var(
            rng,
            &[cout, cin, ksize, ksize],
            gain * (3.0 / fan_in).sqrt(),
            device,
        )?,
        bias: Var::from_tensor(&Tensor::zeros(cout, DType::F32, device)?)?,
    })
}

impl Network {
    /// A freshly initialised network; the same seed gives the same weights.
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::derive(seed, &[0x1_417]);
        let c0 = config.levels[0].channels;
        let init = uniform_var(&mut rng, &[1, c0, 1, 1], 1.0, device)?;
        let mut levels = Vec::new();
        for (i, lc) in config.levels.iter().enumerate() {
            let c = lc.channels;
            let s2d = 1usize << lc.s2d_log2;
            let image_channels = 3 * s2d * s2d;
            let mut layers = Vec::new();
            for layer in &lc.layers {
                let k = layer.k as usize;
                layers.push(Layer {
                    conv1: new_conv(&mut rng, c + image_channels, c, 3, 2.0f64.sqrt(), device)?,
                    // A small last conv keeps each residual block near the identity at first.
                    conv2: new_conv(&mut rng, c, c, 3, 0.1, device)?,
                    head: uniform_var(
                        &mut rng,
                        &[image_channels * k, c, 1, 1],
                        0.5 / (c as f64).sqrt(),
                        device,
                    )?,
                    k,
                    cell: 1 << layer.cell_log2,
                });
            }
            let up = match config.levels.get(i + 1) {
                Some(next) => {
                    let shuffle = if next.s2d_log2 > lc.s2d_log2 { 1 } else { 2 };
                    let conv = new_conv(
                        &mut rng,
                        c,
                        shuffle * shuffle * next.channels,
                        3,
                        1.0,
                        device,
                    )?;
                    Some((conv, shuffle))
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
            device: device.clone(),
            track_grad: false,
        })
    }

    /// Whether walks keep the gradient graph (training) or not (coding).
    pub fn set_track_grad(&mut self, on: bool) {
        self.track_grad = on;
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every trainable tensor with its stable name, in a fixed order.
    pub fn params(&self) -> Vec<Param> {
        let mut out = vec![Param {
            name: "init".into(),
            var: self.init.clone(),
        }];
        let conv = |out: &mut Vec<Param>, prefix: &str, c: &Conv| {
            out.push(Param {
                name: format!("{prefix}.weight"),
                var: c.weight.clone(),
            });
            out.push(Param {
                name: format!("{prefix}.bias"),
                var: c.bias.clone(),
            });
        };
        for (i, level) in self.levels.iter().enumerate() {
            for (j, layer) in level.layers.iter().enumerate() {
                conv(&mut out, &format!("level{i}.layer{j}.conv1"), &layer.conv1);
                conv(&mut out, &format!("level{i}.layer{j}.conv2"), &layer.conv2);
                out.push(Param {
                    name: format!("level{i}.layer{j}.head"),
                    var: layer.head.clone(),
                });
            }
            if let Some((up, _)) = &level.up {
                conv(&mut out, &format!("level{i}.up"), up);
            }
        }
        out
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
    /// `height × width` pixels (multiples of the granule).
    pub fn walk(
        &self,
        batch: usize,
        height: usize,
        width: usize,
        max_layers: usize,
        mut how: Walk,
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
        };
        for level in &self.levels {
            for layer in &level.layers {
                let n = result.indices.len();
                if n == max_layers {
                    break;
                }
                let x = Tensor::cat(&[&feat, &space_to_depth(&image, level.s2d)?], 1)?;
                feat = (&feat + layer.conv2.forward(&layer.conv1.forward(&x)?.silu()?)?)?;
                if !self.track_grad {
                    feat = feat.detach();
                }
                let shape = self.layer_shape(n, batch, height, width);
                let (chosen, indices) = match &mut how {
                    Walk::Replay(all) if self.track_grad => {
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
                        let chosen = if self.track_grad {
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
                result.images.push(if self.track_grad {
                    chosen
                } else {
                    image.clone()
                });
                result.indices.push(indices);
            }
            if result.indices.len() == max_layers {
                break;
            }
            if let Some((up, shuffle)) = &level.up {
                feat = up.forward(&feat)?;
                if *shuffle > 1 {
                    feat = candle_nn::ops::pixel_shuffle(&feat, *shuffle)?;
                }
                let (_, _, h, w) = image.dims4()?;
                image = image.upsample_bilinear2d(2 * h, 2 * w, false)?;
            }
        }
        Ok(result)
    }
}

fn space_to_depth(image: &Tensor, r: usize) -> Result<Tensor> {
    Ok(if r == 1 {
        image.clone()
    } else {
        candle_nn::ops::pixel_unshuffle(image, r)?
    })
}
