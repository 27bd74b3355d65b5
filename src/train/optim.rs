//! Adam with its moments in the open: Split-and-Prune copies a node's moments along with
//! its weights, and a checkpoint must store them to resume exactly.

use candle_core::{backprop::GradStore, Tensor, Var};

use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm clip: without one, training at lr 1e-3 diverges.
    pub clip_norm: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip_norm: 1.0,
        }
    }
}

#[derive(Debug)]
pub struct Adam {
    pub config: AdamConfig,
    pub vars: Vec<Var>,
    /// First and second moments, one per var.
    pub m: Vec<Var>,
    pub v: Vec<Var>,
    /// Steps taken.
    pub t: u64,
    /// Vars held still: no update, no part in the gradient norm (their moments stay zero).
    pub frozen: Vec<bool>,
}

impl Adam {
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        let zeros =
            |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().zeros_like()?)?) };
        Ok(Adam {
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
            frozen: vec![false; vars.len()],
            vars,
            config,
            t: 0,
        })
    }

    /// One update at learning rate `lr`. Returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let grads: Vec<Option<&Tensor>> = self
            .vars
            .iter()
            .zip(&self.frozen)
            .map(|(v, &frozen)| if frozen { None } else { grads.get(v) })
            .collect();
        let mut sq = 0.0f64;
        for g in grads.iter().flatten() {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let norm = sq.sqrt();
        let scale = if norm.is_finite() && norm > self.config.clip_norm {
            self.config.clip_norm / norm
        } else {
            1.0
        };
        if !norm.is_finite() {
            return Ok(norm);
        }
        self.t += 1;
        let AdamConfig {
            beta1: b1,
            beta2: b2,
            eps,
            ..
        } = self.config;
        let bias1 = 1.0 - b1.powi(self.t as i32);
        let bias2 = 1.0 - b2.powi(self.t as i32);
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let g = (*g * scale)?;
            let m = ((self.m[i].as_tensor() * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((self.v[i].as_tensor() * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let denom = ((&v / bias2)?.sqrt()? + eps)?;
            let update = ((&m / bias1)? / denom)?;
            let theta = (self.vars[i].as_tensor() - (update * lr)?)?;
            self.vars[i].set(&theta)?;
            self.m[i].set(&m)?;
            self.v[i].set(&v)?;
        }
        Ok(norm)
    }

    /// Index of `var` among the optimised vars.
    pub fn position(&self, var: &Var) -> Option<usize> {
        self.vars
            .iter()
            .position(|v| v.as_tensor().id() == var.as_tensor().id())
    }
}

/// Copies rows `from*rows_per..(from+1)*rows_per` of a 2-D-viewable var's first dimension
/// onto the rows of `to`.
pub fn copy_rows(var: &Var, rows_per: usize, from: usize, to: usize) -> Result<()> {
    let t = var.as_tensor();
    let src = t.narrow(0, from * rows_per, rows_per)?.contiguous()?;
    let updated = t.slice_assign(&range_of(t, to * rows_per, rows_per), &src)?;
    var.set(&updated)?;
    Ok(())
}

fn range_of(t: &Tensor, start: usize, len: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<_> = t.dims().iter().map(|&d| 0..d).collect();
    ranges[0] = start..start + len;
    ranges
}
