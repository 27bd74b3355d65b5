//! The DDN core: per-cell selection, gradient flow, Split-and-Prune, chain dropout and
//! exact resumption of training.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use ddn::codec::NearestChooser;
use ddn::model::ddl::{argmin, nearest, Candidates, LayerShape};
use ddn::model::{Chooser, ModelConfig, Network, Walk};
use ddn::rng::Rng;
use ddn::train::chooser::{dropout_fires, TrainChooser};
use ddn::train::data::Dataset;
use ddn::train::refit::refit_pass;
use ddn::train::split_prune::{NodeStats, Split};
use ddn::train::{Hyper, Trainer};

fn randn(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn brute_force_distances(images: &Tensor, target: &Tensor, s: LayerShape) -> Vec<f32> {
    let all = images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let tgt = target.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (h, w) = (s.height, s.width);
    let mut out = vec![0f32; s.batch * s.k * s.cells()];
    for b in 0..s.batch {
        for k in 0..s.k {
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        let i = (((b * s.k + k) * 3 + c) * h + y) * w + x;
                        let t = ((b * 3 + c) * h + y) * w + x;
                        let cell = (y / s.cell) * s.cells_x() + x / s.cell;
                        out[(b * s.k + k) * s.cells() + cell] += (all[i] - tgt[t]).powi(2);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn per_cell_selection_matches_brute_force() {
    let mut rng = Rng::new(11);
    for (s2d, cell) in [(1usize, 1usize), (1, 4), (2, 2), (2, 8)] {
        let (b, c, k, h, w) = (2, 5, 7, 16, 8);
        let shape = LayerShape {
            batch: b,
            k,
            height: h,
            width: w,
            cell,
            s2d,
        };
        let feat = randn(&mut rng, &[b, c, h / s2d, w / s2d]);
        let head = randn(&mut rng, &[k * 3 * s2d * s2d, c, 1, 1]);
        let prev = randn(&mut rng, &[b, 3, h, w]);
        let target = randn(&mut rng, &[b, 3, h, w]);
        let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
        let fast = cands.cell_distances(&target).unwrap();
        let slow = brute_force_distances(&cands.images().unwrap(), &target, shape);
        for (a, e) in fast.iter().zip(&slow) {
            assert!(
                (a - e).abs() <= 1e-3 * e.max(1.0),
                "s2d {s2d} cell {cell}: {a} vs {e}"
            );
        }
        let chosen = nearest(&fast, shape);
        for bi in 0..b {
            for ci in 0..shape.cells() {
                let d: Vec<f32> = (0..k)
                    .map(|ki| slow[(bi * k + ki) * shape.cells() + ci])
                    .collect();
                let best = d.iter().cloned().fold(f32::INFINITY, f32::min);
                let got = chosen[bi * shape.cells() + ci] as usize;
                assert!(d[got] <= best + 1e-3 * best.max(1.0));
            }
        }
    }
}

#[test]
fn argmin_ties_go_to_the_lowest_index() {
    assert_eq!(argmin(&[3.0, 1.0, 1.0, 2.0]), 1);
    assert_eq!(argmin(&[0.5, 0.5]), 0);
    // Two identical nodes (a split's copy) always resolve to the lower one.
    let mut rng = Rng::new(2);
    let shape = LayerShape {
        batch: 1,
        k: 3,
        height: 4,
        width: 4,
        cell: 2,
        s2d: 1,
    };
    let feat = randn(&mut rng, &[1, 4, 4, 4]);
    let row = randn(&mut rng, &[3, 4, 1, 1]);
    let far = (randn(&mut rng, &[3, 4, 1, 1]) * 50.0).unwrap();
    let head = Tensor::cat(&[&far, &row, &row], 0).unwrap();
    let prev = Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let cands = Candidates::new(&feat, &head, &prev, shape).unwrap();
    let target = cands
        .images()
        .unwrap()
        .narrow(1, 1, 1)
        .unwrap()
        .squeeze(1)
        .unwrap();
    let chosen = nearest(&cands.cell_distances(&target).unwrap(), shape);
    assert_eq!(chosen, vec![1, 1, 1, 1]);
}

/// A greedy (encoder) walk of `network` over a random batch `[b,3,h,w]`: the batch, its
/// per-layer targets, and the walk.
#[test]
fn only_chosen_candidates_receive_gradient() {
    let network = Network::new(&ModelConfig::tiny(), 3, &Device::Cpu).unwrap();
    let image = Tensor::rand(-0.5f32, 0.5, (2, 3, 8, 8), &Device::Cpu).unwrap();
    let n = network.config().layer_count();
    let targets = network.layer_targets(&image, n).unwrap();
    let mut chooser = NearestChooser { targets: &targets };
    let walk = network
        .training_walk(2, 8, 8, n, Walk::Choose(&mut chooser))
        .unwrap();
    let loss = walk
        .images
        .iter()
        .zip(&targets)
        .map(|(a, t)| ddn::model::ddl::mse(a, t).unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    let grads = loss.backward().unwrap();
    for (l, head) in network.heads().iter().enumerate() {
        let k = network.config().schedule()[l].k as usize;
        let g = grads.get(head).unwrap().reshape((k, ())).unwrap();
        let norms = g.sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
        let chosen: std::collections::BTreeSet<u32> = walk.indices[l].iter().copied().collect();
        for (node, &n) in norms.iter().enumerate() {
            if chosen.contains(&(node as u32)) {
                assert!(n > 0.0, "layer {l}: chosen node {node} got no gradient");
            } else {
                assert_eq!(n, 0.0, "layer {l}: unchosen node {node} got gradient");
            }
        }
    }
}

/// The nearest candidates, for a walk that ends after layer `last`.
struct StopAfter<'a> {
    nearest: NearestChooser<'a>,
    last: usize,
}

impl Chooser for StopAfter<'_> {
    fn choose(&mut self, layer: usize, candidates: &Candidates) -> ddn::Result<Vec<u32>> {
        self.nearest.choose(layer, candidates)
    }

    fn goes_on_after(&self, layer: usize) -> bool {
        layer < self.last
    }
}

#[test]
fn a_chooser_can_end_the_walk_and_the_layers_walked_are_unchanged() {
    let network = Network::new(&ModelConfig::tiny(), 5, &Device::Cpu).unwrap();
    let n = network.config().layer_count();
    let image = Tensor::rand(-0.5f32, 0.5, (2, 3, 16, 16), &Device::Cpu).unwrap();
    let targets = network.layer_targets(&image, n).unwrap();
    let mut nearest = NearestChooser { targets: &targets };
    let whole = network
        .walk(2, 16, 16, n, Walk::Choose(&mut nearest))
        .unwrap();
    for last in 0..n {
        let mut stopping = StopAfter {
            nearest: NearestChooser { targets: &targets },
            last,
        };
        let walk = network
            .walk(2, 16, 16, n, Walk::Choose(&mut stopping))
            .unwrap();
        assert_eq!(
            walk.indices[..],
            whole.indices[..=last],
            "stop after {last}"
        );
    }
}

#[test]
fn every_layer_brings_the_walk_closer_on_average() {
    // Nearest selection can never be worse than the previous image plus the best of K
    // residuals — with one zero-ish residual among them, error cannot grow much. Check
    // the final image is closer to the target than the first layer's.
    let network = Network::new(&ModelConfig::tiny(), 5, &Device::Cpu).unwrap();
    let n = network.config().layer_count();
    let image = Tensor::rand(-0.5f32, 0.5, (2, 3, 16, 16), &Device::Cpu).unwrap();
    let targets = network.layer_targets(&image, n).unwrap();
    // A coding walk keeps its last image: the error after `layers` layers.
    let err = |layers: usize| {
        let mut chooser = NearestChooser { targets: &targets };
        let walk = network
            .walk(2, 16, 16, layers, Walk::Choose(&mut chooser))
            .unwrap();
        let up = walk
            .images
            .last()
            .unwrap()
            .upsample_nearest2d(16, 16)
            .unwrap();
        ddn::model::ddl::mse(&up, &image)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(err(n) < err(1));
}

#[test]
fn split_copies_head_rows_and_adam_moments() {
    let hyper = Hyper {
        batch: 2,
        crop: 8,
        ..Hyper::default()
    };
    let mut trainer = Trainer::new(&ModelConfig::tiny(), hyper, &Device::Cpu).unwrap();
    let data = Dataset::from_images(vec![common::test_image(32, 32, 1)]);
    let batch = data.batch(1, 0, 2, 8, &Device::Cpu).unwrap();
    trainer.train_step(&batch).unwrap();
    // Make node 2 of layer 0 busy and node 1 rare.
    let k = trainer.stats[0].k;
    trainer.stats[0].count = vec![10.0; k];
    trainer.stats[0].count[2] = 1000.0;
    trainer.stats[0].count[1] = 1.0;
    assert_eq!(
        trainer.stats[0].decide(),
        Some(Split {
            split: 2,
            pruned: 1
        })
    );
    let head = trainer.network.heads()[0].clone();
    let i = trainer.adam.position(&head).unwrap();
    let rows = |v: &Var, node: usize| {
        v.as_tensor()
            .narrow(0, 3 * node, 3)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let before = (
        rows(&head, 2),
        rows(&trainer.adam.m[i], 2),
        rows(&trainer.adam.v[i], 2),
    );
    assert!(
        before.1.iter().any(|&x| x != 0.0),
        "moments must be nonzero for the test to mean something"
    );
    trainer.split_and_prune().unwrap();
    assert_eq!(rows(&head, 1), before.0);
    assert_eq!(rows(&trainer.adam.m[i], 1), before.1);
    assert_eq!(rows(&trainer.adam.v[i], 1), before.2);
    assert_eq!(rows(&head, 2), before.0);
    let total: f64 = trainer.stats[0].count.iter().sum();
    assert!(
        (total - (10.0 * (k - 2) as f64 + 1001.0)).abs() < 1e-9,
        "counts are conserved"
    );
    assert_eq!(trainer.stats[0].count[1], trainer.stats[0].count[2]);
}

#[test]
fn split_and_prune_rule_follows_the_reference_thresholds() {
    let mut s = NodeStats::new(4);
    s.count = vec![25.0, 25.0, 25.0, 25.0];
    assert_eq!(s.decide(), None, "uniform use never splits");
    s.count = vec![30.0, 25.0, 25.0, 20.0];
    assert_eq!(s.decide(), None, "spread 0.10 < 1/K");
    s.count = vec![55.0, 20.0, 15.0, 10.0];
    assert_eq!(
        s.decide(),
        Some(Split {
            split: 0,
            pruned: 3
        }),
        "rarest under 0.5/K"
    );
    s.count = vec![45.0, 20.0, 20.0, 15.0];
    assert_eq!(
        s.decide(),
        Some(Split {
            split: 0,
            pruned: 3
        }),
        "spread 0.30 > 1/K"
    );
    s.count = vec![10.0, 0.0, 0.0, 5.0];
    s.loss_acc = vec![1.0, 3.0, 7.0, 1.0];
    assert_eq!(
        s.decide(),
        Some(Split {
            split: 0,
            pruned: 2
        }),
        "dead node farthest from the data"
    );
}

#[test]
fn chain_dropout_fires_at_its_rate() {
    let p = 0.05;
    let draws = 40_000u64;
    let fired = (0..draws)
        .filter(|&i| dropout_fires(9, i / 8, (i % 8) as usize, p))
        .count() as f64;
    let rate = fired / draws as f64;
    assert!((rate - p).abs() < 0.005, "rate {rate}");
    assert!(!dropout_fires(9, 0, 0, 0.0));
    assert!((0..100).all(|s| dropout_fires(9, s, 0, 1.0)));
}

#[test]
fn chain_dropout_replaces_the_nearest_with_random_choices() {
    let network = Network::new(&ModelConfig::tiny(), 6, &Device::Cpu).unwrap();
    let image = Tensor::rand(-0.5f32, 0.5, (4, 3, 16, 16), &Device::Cpu).unwrap();
    let n = network.config().layer_count();
    let targets = network.layer_targets(&image, n).unwrap();
    let mut stats: Vec<NodeStats> = network
        .config()
        .schedule()
        .iter()
        .map(|s| NodeStats::new(s.k as usize))
        .collect();
    let walk_with = |p: f64, stats: &mut [NodeStats]| {
        let mut chooser = TrainChooser {
            targets: &targets,
            stats,
            picks: Vec::new(),
            seed: 1,
            step: 0,
            chain_dropout: p,
            keep: None,
        };
        network
            .walk(4, 16, 16, n, Walk::Choose(&mut chooser))
            .unwrap()
            .indices
    };
    let greedy = walk_with(0.0, &mut stats);
    let mut nearest_chooser = NearestChooser { targets: &targets };
    let reference = network
        .walk(4, 16, 16, n, Walk::Choose(&mut nearest_chooser))
        .unwrap()
        .indices;
    assert_eq!(greedy, reference);
    let random = walk_with(1.0, &mut stats);
    assert_ne!(random[0], greedy[0]);
    let picks: f64 = stats[0].count.iter().sum();
    assert_eq!(
        picks as usize,
        2 * greedy[0].len(),
        "counters see the true nearest both times"
    );
}

/// Runs `steps` training steps on the trainer's own seeded batches; returns the losses.
fn train_steps(trainer: &mut Trainer, data: &Dataset, steps: u64) -> Vec<f64> {
    let h = trainer.hyper.clone();
    (0..steps)
        .map(|_| {
            let batch = data
                .batch(h.seed, trainer.step, h.batch, h.crop, &Device::Cpu)
                .unwrap();
            trainer.train_step(&batch).unwrap().loss
        })
        .collect()
}

fn all_state(t: &Trainer) -> Vec<Vec<f32>> {
    let flat = |v: &Var| {
        v.as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let mut out: Vec<Vec<f32>> = t.network.params().iter().map(|p| flat(&p.var)).collect();
    out.extend(t.adam.m.iter().map(flat));
    out.extend(t.adam.v.iter().map(flat));
    out
}

#[test]
fn resumed_training_equals_an_unbroken_run() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let data = Dataset::from_images(vec![
        common::test_image(40, 40, 1),
        common::test_image(48, 40, 2),
    ]);
    let hyper = Hyper {
        batch: 3,
        crop: 16,
        warmup_steps: 2,
        chain_dropout: 0.3,
        ..Hyper::default()
    };
    let mut unbroken = Trainer::new(&ModelConfig::tiny(), hyper.clone(), &Device::Cpu).unwrap();
    train_steps(&mut unbroken, &data, 6);

    let mut first = Trainer::new(&ModelConfig::tiny(), hyper.clone(), &Device::Cpu).unwrap();
    train_steps(&mut first, &data, 3);
    first.save_checkpoint(&ckpt, 1.5).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(&ckpt, &Device::Cpu).unwrap();
    assert_eq!(resumed.step, 3);
    assert_eq!(resumed.seconds_before, 1.5);
    train_steps(&mut resumed, &data, 3);

    assert_eq!(resumed.step, unbroken.step);
    assert_eq!(resumed.adam.t, unbroken.adam.t);
    assert_eq!(resumed.stats, unbroken.stats);
    assert!(
        all_state(&resumed) == all_state(&unbroken),
        "weights or moments differ"
    );
}

#[test]
fn training_only_some_parameters_holds_the_others_still() {
    let data = Dataset::from_images(vec![common::test_image(40, 40, 5)]);
    let hyper = Hyper {
        batch: 3,
        crop: 16,
        lr: 2e-3,
        warmup_steps: 1,
        train_only: vec!["level2.layer0.head".into(), "level1".into()],
        ..Hyper::default()
    };
    let mut trainer = Trainer::new(&ModelConfig::tiny(), hyper, &Device::Cpu).unwrap();
    let before = all_state(&trainer);
    train_steps(&mut trainer, &data, 4);
    // Every layer's counts now ask for a split; only the heads that train get one.
    for stats in &mut trainer.stats {
        stats.count.iter_mut().for_each(|c| *c = 0.0);
        stats.count[0] = 10.0;
    }
    let levels = trainer.network.config().levels.clone();
    let heads_that_train = 1 + levels[1].layers.len();
    assert_eq!(trainer.split_and_prune().unwrap(), heads_that_train);
    let after = all_state(&trainer);
    let params = trainer.network.params();
    assert!(params.iter().any(|p| p.name.starts_with("level0.")));
    for (i, p) in params.iter().enumerate() {
        let trains = p.name == "level2.layer0.head" || p.name.starts_with("level1.");
        assert_eq!(before[i] != after[i], trains, "{}", p.name);
    }
    // A name that selects nothing is a mistake, not a run that trains nothing; a prefix
    // selects whole dot-separated parts only.
    for wrong in ["level2.layer0.hea", "level9"] {
        let hyper = Hyper {
            train_only: vec![wrong.into()],
            ..Hyper::default()
        };
        let err = Trainer::new(&ModelConfig::tiny(), hyper, &Device::Cpu).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains(wrong)),
            "{wrong}"
        );
    }
}

#[test]
fn a_least_squares_refit_lowers_the_error_of_the_head_it_refits() {
    // Over the same crops, the refitted layer's chosen candidates come nearer: the refit
    // minimises their error plus a pull to the old rows, and choosing again can only help.
    let data = Dataset::from_images(vec![
        common::test_image(40, 40, 6),
        common::test_image(48, 40, 7),
    ]);
    let network = Network::new(&ModelConfig::tiny(), 1, &Device::Cpu).unwrap();
    let level2_layer0 = 3;
    let hyper = Hyper {
        batch: 2,
        crop: 16,
        ..Hyper::default()
    };
    let pass = || refit_pass(&network, &data, &hyper, (0, 3), &[level2_layer0]).unwrap();
    let (first, second) = (pass(), pass());
    assert_eq!(first[0].layer, level2_layer0);
    assert!(
        second[0].mse < 0.95 * first[0].mse,
        "{} -> {}",
        first[0].mse,
        second[0].mse
    );
}

#[test]
fn training_lowers_the_loss_on_a_tiny_problem() {
    let data = Dataset::from_images(vec![common::test_image(32, 32, 3)]);
    let hyper = Hyper {
        batch: 4,
        crop: 16,
        lr: 2e-3,
        warmup_steps: 5,
        ..Hyper::default()
    };
    let mut trainer = Trainer::new(&ModelConfig::tiny(), hyper.clone(), &Device::Cpu).unwrap();
    let losses = train_steps(&mut trainer, &data, 60);
    let early: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let late: f64 = losses[50..].iter().sum::<f64>() / 10.0;
    assert!(late < 0.8 * early, "loss {early} -> {late}");
}

/// One training step of a fresh tiny network on a fixed batch with the keep trade-off
/// range `keep_lambda`.
fn one_step_with_keep(keep_lambda: [f64; 2]) -> ddn::train::StepReport {
    let hyper = Hyper {
        batch: 2,
        crop: 16,
        chain_dropout: 0.0,
        keep_lambda,
        ..Hyper::default()
    };
    let mut trainer = Trainer::new(&ModelConfig::tiny(), hyper, &Device::Cpu).unwrap();
    let data = Dataset::from_images(vec![common::test_image(32, 32, 4)]);
    let batch = data.batch(1, 0, 2, 16, &Device::Cpu).unwrap();
    trainer.train_step(&batch).unwrap()
}

#[test]
fn a_training_walk_that_may_keep_keeps_where_no_candidate_pays_for_its_bits() {
    let never = one_step_with_keep([0.0, 0.0]);
    let coded = |r: &ddn::train::StepReport| -> u64 { r.picks.iter().flatten().sum() };
    assert!(coded(&never) > 0);
    // At a negligible λ a cell keeps only where no candidate is nearer than the current
    // image; some cells do, so fewer cells code a node.
    let cheap = one_step_with_keep([1e-3, 1e-3]);
    assert!(coded(&cheap) <= coded(&never));
    assert!(
        cheap.loss <= never.loss * 1.000_001,
        "{} vs {}",
        cheap.loss,
        never.loss
    );
    // At an enormous λ every cell keeps: no node is coded and the image never moves
    // from the network's starting image, so the loss is larger.
    let dear = one_step_with_keep([1e12, 1e12]);
    assert_eq!(coded(&dear), 0);
    assert!(dear.loss > never.loss, "{} vs {}", dear.loss, never.loss);
}
