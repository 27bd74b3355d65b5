//! The paper's 2-D experiment: Split-and-Prune must fix what gradient descent alone
//! leaves behind.

use ddn::toy2d::{run_density, Density, ToyConfig, DENSITIES};

#[test]
fn split_and_prune_beats_gradient_descent_on_every_density() {
    assert!(DENSITIES.len() >= 4);
    for name in DENSITIES {
        let density = Density::named(name).unwrap();
        let r = run_density(&density, ToyConfig::default(), None).unwrap();
        assert!(
            r.kl_sp * 5.0 <= r.kl_gd,
            "{name}: S&P {:.3} is not 5x below GD {:.3}",
            r.kl_sp,
            r.kl_gd
        );
        assert!(
            r.kl_sp <= 2.0 * r.kl_real,
            "{name}: S&P {:.3} is not within 2x of real samples {:.3}",
            r.kl_sp,
            r.kl_real
        );
    }
}

#[test]
fn densities_are_normalised_and_sampling_stays_inside() {
    let d = Density::named("spirals").unwrap();
    assert!((d.p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let mut rng = ddn::rng::Rng::new(3);
    for _ in 0..1000 {
        let [x, y] = d.sample(&mut rng);
        assert!((-1.0..=1.0).contains(&x) && (-1.0..=1.0).contains(&y));
    }
    assert!(Density::named("nope").is_none());
}

#[test]
fn real_samples_score_far_better_than_a_single_point() {
    let d = Density::named("blurs").unwrap();
    let mut rng = ddn::rng::Rng::new(5);
    let real: Vec<[f64; 2]> = (0..2000).map(|_| d.sample(&mut rng)).collect();
    let collapsed = vec![[0.9, -0.9]; 2000];
    assert!(d.kl_of(&real) * 5.0 < d.kl_of(&collapsed));
}
