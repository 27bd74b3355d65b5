//! Split-and-Prune, the DDN paper's node balancing: keeps every output node of a DDL in use.
//!
//! Each DDL counts how often each of its K nodes is the nearest, summed over all cells.
//! After an optimizer step, if the busiest node is over-used or the rarest under-used, the
//! rarest is pruned and the busiest split into it: its head rows (and their Adam moments)
//! are copied into the freed slot and the counts are shared between the two.

use serde::{Deserialize, Serialize};

/// Pick statistics of one DDL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    pub k: usize,
    /// Cumulative times each node was the nearest.
    pub count: Vec<f64>,
    /// `near2[a*K + b]`: times `a` was the nearest and `b` the second nearest.
    pub near2: Vec<f64>,
    /// Sum of each node's distance over every cell seen; ranks dead nodes for pruning.
    pub loss_acc: Vec<f64>,
}

/// A split: `split`'s rows were copied into `pruned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub split: usize,
    pub pruned: usize,
}

impl NodeStats {
    pub fn new(k: usize) -> Self {
        NodeStats {
            k,
            count: vec![0.0; k],
            near2: vec![0.0; k * k],
            loss_acc: vec![0.0; k],
        }
    }

    /// Records one cell's K distances.
    pub fn record(&mut self, distances: &[f32]) {
        let (first, second) = nearest_two(distances);
        self.count[first] += 1.0;
        if let Some(second) = second {
            self.near2[first * self.k + second] += 1.0;
        }
        for (acc, &d) in self.loss_acc.iter_mut().zip(distances) {
            *acc += d as f64;
        }
    }

    /// Adds another tally of the same layer. Counts are whole numbers, so the order of
    /// merging changes none of them; the distance sums (`loss_acc`, which only rank dead
    /// nodes) may differ in their last bits from one running sum.
    pub fn merge(&mut self, other: &NodeStats) {
        let add = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        add(&mut self.count, &other.count);
        add(&mut self.near2, &other.near2);
        add(&mut self.loss_acc, &other.loss_acc);
    }

    /// The node to split and the node to prune, when the official rule fires: the busiest
    /// node over 2/K, or a spread over 1/K, or the rarest node under 0.5/K.
    pub fn decide(&self) -> Option<Split> {
        let total: f64 = self.count.iter().sum();
        if total <= 0.0 || self.k < 2 {
            return None;
        }
        let split = argmax(&self.count);
        let pruned = self.prune_candidate();
        if split == pruned {
            return None;
        }
        let p = 1.0 / self.k as f64;
        let ps = self.count[split] / total;
        let pd = self.count[pruned] / total;
        let fires = ps > 2.0 * p || ps - pd > p || pd < 0.5 * p;
        fires.then_some(Split { split, pruned })
    }

    /// The rarest node; among never-picked nodes, the one with the largest accumulated
    /// distance (the farthest from the data).
    fn prune_candidate(&self) -> usize {
        let dead: Vec<usize> = (0..self.k).filter(|&i| self.count[i] == 0.0).collect();
        if dead.is_empty() {
            return argmin(&self.count);
        }
        *dead
            .iter()
            .max_by(|&&a, &&b| {
                self.loss_acc[a]
                    .total_cmp(&self.loss_acc[b])
                    .then(b.cmp(&a))
            })
            .expect("non-empty")
    }

    /// Updates the counters for `s` (§2.5): the pruned node's picks go where its samples
    /// would go next, then the split node's count is shared with its copy. The total is
    /// conserved.
    pub fn apply(&mut self, s: Split) {
        let k = self.k;
        let Split { split, pruned } = s;
        self.redistribute_pruned(pruned);
        let half = self.count[split] / 2.0;
        self.count[split] = half;
        self.count[pruned] = half;
        for j in 0..k {
            let row = self.near2[split * k + j] / 2.0;
            self.near2[split * k + j] = row;
            self.near2[pruned * k + j] = row;
        }
        for i in 0..k {
            let col = self.near2[i * k + split] / 2.0;
            self.near2[i * k + split] = col;
            self.near2[i * k + pruned] += col;
        }
        self.loss_acc[pruned] = self.loss_acc[split];
    }

    /// Gives the pruned node's picks to the nodes its samples would go to next (its
    /// `near2` row), or evenly when it has none, and forgets its `near2` entries. O(K): the
    /// reference also moves the `near2` mass itself, which costs O(K²) per split and only
    /// refines later redistributions.
    fn redistribute_pruned(&mut self, pruned: usize) {
        let k = self.k;
        let row: Vec<(usize, f64)> = (0..k)
            .filter(|&j| j != pruned && self.near2[pruned * k + j] > 0.0)
            .map(|j| (j, self.near2[pruned * k + j]))
            .collect();
        let moved = self.count[pruned];
        let sum: f64 = row.iter().map(|&(_, w)| w).sum();
        if sum > 0.0 {
            for &(j, w) in &row {
                self.count[j] += moved * w / sum;
            }
        } else {
            let share = moved / (k - 1) as f64;
            (0..k)
                .filter(|&j| j != pruned)
                .for_each(|j| self.count[j] += share);
        }
        self.count[pruned] = 0.0;
        for j in 0..k {
            self.near2[pruned * k + j] = 0.0;
            self.near2[j * k + pruned] = 0.0;
        }
    }
}

fn nearest_two(d: &[f32]) -> (usize, Option<usize>) {
    let first = crate::model::ddl::argmin(d) as usize;
    let second = (0..d.len())
        .filter(|&i| i != first)
        .min_by(|&a, &b| d[a].total_cmp(&d[b]).then(a.cmp(&b)));
    (first, second)
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    best
}

fn argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] < v[best] {
            best = i;
        }
    }
    best
}
