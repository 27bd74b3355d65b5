//! Rate control: the trade-off λ whose file is the largest that fits a size budget.

use crate::error::Result;

/// Below this λ (squared 8-bit error per bit) the search tries λ = 0, the best file.
pub(crate) const MIN_USEFUL_LAMBDA: f64 = 1.0;
/// Rate control probes at most this many λ values.
const MAX_RATE_PROBES: usize = 12;
/// A probe within this fraction under the budget is close enough.
const RATE_TOLERANCE: f64 = 0.03;
/// The search stops when the λ that fits is within this factor of one that does not.
pub(crate) const NARROW_BRACKET: f64 = 1.05;
/// Re-choosing the last layer aims this close under the budget …
const TAIL_TOLERANCE: f64 = 0.01;
/// … with at most this many trials …
const TAIL_STEPS: usize = 8;
/// … at a λ within this factor of the walk's: the bytes a far λ puts into the last layer
/// alone buy much less than a walk that spreads them over every layer (at 3×, Kodak lost
/// up to 1 dB on single images; docs/experiments.md).
const TAIL_LAMBDA_RANGE: f64 = 1.5;
/// Once the bracket is too narrow for another walk to help (the size jumps across it),
/// the last fitting walk's last layer may move this far instead: its bytes still buy
/// some quality, and no walk can place them better.
const NARROW_TAIL_LAMBDA_RANGE: f64 = 4.0;
/// The typical slope of log size against log λ (size ∝ λ^-0.6).
const TYPICAL_SLOPE: f64 = 0.6;
/// Predicting the next λ from a walk's estimated sizes takes at most this many estimates …
const PREDICT_STEPS: usize = 4;
/// … and stops within this fraction of the size aimed at …
const PREDICT_TOLERANCE: f64 = 0.01;
/// … at a λ within this factor of the walk's.
const PREDICT_LAMBDA_RANGE: f64 = 16.0;
/// A walk's log size moves by about this fraction of its estimate's when λ rises (the
/// earlier layers keep more, which leaves the later layers more worth coding) …
const ESTIMATE_FOLLOWS_RISING: f64 = 0.9;
/// … and when λ falls (the earlier layers then leave the later ones less), this fraction
/// at 1 bpp, less this much per unit of the log size to gain and per unit of log bpp,
/// within these bounds: a long way down, or at a high rate, the walk follows less.
/// Fitted to 57 training photos at 0.1–1.0 bpp (docs/experiments.md).
const ESTIMATE_FOLLOWS_FALLING: f64 = 0.656;
const ESTIMATE_FOLLOWS_FALLING_PER_LOG_SIZE: f64 = 0.26;
const ESTIMATE_FOLLOWS_FALLING_PER_LOG_BPP: f64 = 0.061;
const ESTIMATE_FOLLOWS_FALLING_RANGE: [f64; 2] = [0.45, 0.8];

/// The share of its estimate's move in log size a walk makes, to move from log size
/// `from` to `to` at a target of `bpp`.
fn estimate_follows(from: f64, to: f64, bpp: f64) -> f64 {
    if to < from {
        return ESTIMATE_FOLLOWS_RISING;
    }
    let [least, most] = ESTIMATE_FOLLOWS_FALLING_RANGE;
    (ESTIMATE_FOLLOWS_FALLING
        - ESTIMATE_FOLLOWS_FALLING_PER_LOG_SIZE * (to - from)
        - ESTIMATE_FOLLOWS_FALLING_PER_LOG_BPP * bpp.ln())
    .clamp(least, most)
}

/// What the rate search needs of one encoder walk.
pub(super) trait RateProbe {
    fn lambda(&self) -> f64;
    fn file(&self) -> Result<Vec<u8>>;
    /// The file with only its last coding layer chosen again at `lambda`, if the walk
    /// allows.
    fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>>;
    /// Roughly the size of a walk at `lambda`, exact at the probe's own λ, from this
    /// walk's choices alone, if the walk allows.
    fn estimated_size_at(&self, lambda: f64) -> Option<Result<usize>>;
}

/// Searches λ for the largest file of at most `budget` bytes. Each walk predicts the λ
/// of the next from its own choices made again at other λ (no network pass); without
/// that, or when the predictions creep, it falls back on the sizes themselves: file size
/// falls as λ rises, roughly as a power of it, so a probe interpolates log size against
/// log λ between the tightest probes on either side of the budget, or extrapolates along
/// the slope of the last two. A probe that lands near the budget is finished by choosing
/// only its last coding layer again, which also costs no network pass.
///
/// Also the walk whose choices made the file, where the search still holds it.
pub(super) fn fit_budget<P: RateProbe>(
    budget: usize,
    bpp: f64,
    start_lambda: f64,
    smallest: Vec<u8>,
    mut encode: impl FnMut(f64) -> Result<P>,
) -> Result<(Vec<u8>, Option<P>)> {
    let mut search = RateSearch::new(budget, bpp);
    let mut lambda = start_lambda;
    for _ in 0..MAX_RATE_PROBES {
        let probe = encode(lambda)?;
        let bytes = probe.file()?;
        let size = bytes.len();
        if size <= budget && (close_to(size, budget, RATE_TOLERANCE) || lambda == 0.0) {
            return Ok((fill_towards_budget(&probe, bytes, budget)?, Some(probe)));
        }
        if let Some(bytes) = fit_last_layer(&probe, size, budget, TAIL_LAMBDA_RANGE)? {
            return Ok((bytes, Some(probe)));
        }
        search.record(lambda, bytes);
        if search.bracket_is_narrow() {
            return finish_across_a_jump(probe, search, smallest, &mut encode);
        }
        lambda = search.next_lambda(&probe)?;
    }
    // No probe fitted: the smallest file does (the caller checked).
    Ok((search.under.map_or(smallest, |(_, bytes)| bytes), None))
}

/// Ends a search whose bracket is too narrow for another walk to help (the size jumps
/// across it): the last fitting walk, walked again if the last probe burst (walks are
/// deterministic), has its last layer filled over a wider λ range; failing that, the
/// largest fitting file so far.
fn finish_across_a_jump<P: RateProbe>(
    last: P,
    search: RateSearch,
    smallest: Vec<u8>,
    encode: &mut impl FnMut(f64) -> Result<P>,
) -> Result<(Vec<u8>, Option<P>)> {
    let Some((lambda, bytes)) = search.under else {
        return Ok((smallest, None));
    };
    let fitting = if last.lambda() == lambda {
        last
    } else {
        drop(last);
        encode(lambda)?
    };
    let filled = fit_last_layer(
        &fitting,
        bytes.len(),
        search.budget,
        NARROW_TAIL_LAMBDA_RANGE,
    )?;
    Ok((filled.unwrap_or(bytes), Some(fitting)))
}

/// A probe's file that fits, grown towards the budget (within [`TAIL_TOLERANCE`]) by
/// choosing its last layer again at a smaller λ where that gives a larger file that still
/// fits: the bytes the user allowed buy quality, and no walk is spent.
fn fill_towards_budget<P: RateProbe>(probe: &P, bytes: Vec<u8>, budget: usize) -> Result<Vec<u8>> {
    if probe.lambda() == 0.0 || close_to(bytes.len(), budget, TAIL_TOLERANCE) {
        return Ok(bytes);
    }
    Ok(
        match fit_last_layer(probe, bytes.len(), budget, TAIL_LAMBDA_RANGE)? {
            Some(fuller) if fuller.len() > bytes.len() => fuller,
            _ => bytes,
        },
    )
}

/// What the λ search has learnt from its probes.
struct RateSearch {
    budget: usize,
    /// The target the budget was made from (bits per pixel).
    bpp: f64,
    /// The largest λ whose file was too big, and its size.
    over: Option<(f64, usize)>,
    /// The smallest λ whose file fitted, and the file.
    under: Option<(f64, Vec<u8>)>,
    /// Every probe so far: λ, size.
    probes: Vec<(f64, usize)>,
    /// Whether each probe's λ was predicted from the walk before it.
    predicted: Vec<bool>,
    /// Whether the λ the search gave last was a prediction.
    predicting: bool,
}

impl RateSearch {
    fn new(budget: usize, bpp: f64) -> Self {
        RateSearch {
            budget,
            bpp,
            over: None,
            under: None,
            probes: Vec::new(),
            predicted: Vec::new(),
            predicting: false,
        }
    }

    fn record(&mut self, lambda: f64, bytes: Vec<u8>) {
        let size = bytes.len();
        self.probes.push((lambda, size));
        self.predicted.push(self.predicting);
        if size <= self.budget {
            if self.under.as_ref().is_none_or(|(l, _)| lambda < *l) {
                self.under = Some((lambda, bytes));
            }
        } else if self.over.is_none_or(|(l, _)| lambda > l) {
            self.over = Some((lambda, size));
        }
    }

    /// Whether the λ that fits and the λ that bursts are so close that the size jumps
    /// between them (few cells, as in a tiny or one-pixel-high image): more probes would
    /// only land on one side or the other.
    fn bracket_is_narrow(&self) -> bool {
        match (self.over, &self.under) {
            (Some((lo, _)), Some((hi, _))) => lo > 0.0 && hi / lo < NARROW_BRACKET,
            _ => false,
        }
    }

    /// The size the search aims at: the middle of the sizes accepted (within
    /// RATE_TOLERANCE under the budget), not its edge, where half the landings would be
    /// just over.
    fn aim(&self) -> f64 {
        self.budget as f64 * (1.0 - RATE_TOLERANCE / 2.0)
    }

    /// Whether the last two probes landed on the same side of the budget.
    fn stuck(&self) -> bool {
        let n = self.probes.len();
        let fits = |s: usize| s <= self.budget;
        n >= 2 && fits(self.probes[n - 2].1) == fits(self.probes[n - 1].1)
    }

    /// Whether two predicted walks in a row landed on the same side: the predictions
    /// creep towards the budget. A first guess on the same side as the prediction that
    /// followed it says nothing of the predictions.
    fn predictions_creep(&self) -> bool {
        let n = self.predicted.len();
        self.stuck() && self.predicted[n - 2] && self.predicted[n - 1]
    }

    /// Whether `lambda` lies strictly between the λ known to burst and the λ known to fit.
    fn in_bracket(&self, lambda: f64) -> bool {
        self.over.is_none_or(|(lo, _)| lambda > lo)
            && self.under.as_ref().is_none_or(|(hi, _)| lambda < *hi)
    }

    /// The next λ to try after the last recorded probe, `probe`: the one its estimated
    /// sizes predict where that is new and the predictions do not creep, else one from
    /// the probes' sizes.
    fn next_lambda(&mut self, probe: &impl RateProbe) -> Result<f64> {
        let size = self.probes.last().expect("a recorded probe").1;
        let predicted = if self.predictions_creep() {
            None
        } else {
            predicted_lambda(probe, size, self.aim(), self.bpp)?.filter(|&p| self.in_bracket(p))
        };
        self.predicting = predicted.is_some();
        Ok(predicted.unwrap_or_else(|| self.next_lambda_from_sizes()))
    }

    fn next_lambda_from_sizes(&self) -> f64 {
        let aim = self.aim();
        let budget = self.budget as f64;
        let n = self.probes.len();
        let (lambda, size) = self.probes[n - 1];
        let fits = |s: usize| s as f64 <= budget;
        match (self.over, &self.under) {
            (Some((lo, lo_size)), Some((hi, hi_bytes))) => {
                // λ = 0 (the best file) being too big says only that λ is positive.
                let lo = if lo > 0.0 { lo } else { hi / 64.0 };
                let (a, b) = ((lo_size as f64).ln(), (hi_bytes.len() as f64).ln());
                // Interpolation can creep from one side on a convex curve; after two
                // probes on the same side, bisect.
                let t = if self.stuck() {
                    0.5
                } else {
                    ((a - aim.ln()) / (a - b)).clamp(0.25, 0.75)
                };
                (lo.ln() + t * (hi.ln() - lo.ln())).exp()
            }
            // One side only: extrapolate along the slope of the last two probes, or the
            // typical one (size ∝ λ^-0.6) after the first, by at least a set step.
            _ => {
                let measured = (n >= 2)
                    .then(|| self.probes[n - 2])
                    .filter(|&(l, s)| l > 0.0 && l != lambda && s != size)
                    .map(|(l, s)| ((s as f64).ln() - (size as f64).ln()) / (lambda / l).ln());
                let (slope, least) = match measured {
                    Some(slope) => (slope.clamp(0.15, 2.0), 1.25),
                    None => (TYPICAL_SLOPE, 1.1),
                };
                let step = (size as f64 / aim).powf(1.0 / slope);
                let next = lambda
                    * if fits(size) {
                        step.clamp(1.0 / 16.0, 1.0 / least)
                    } else {
                        step.clamp(least, 16.0)
                    };
                // Far below any useful trade-off: the budget is likely above the best
                // file, so try the best itself.
                if fits(size) && next < MIN_USEFUL_LAMBDA {
                    0.0
                } else {
                    next
                }
            }
        }
    }
}

/// The λ at which a walk should land on `aim`, from `probe`'s estimated sizes
/// ([`RateProbe::estimated_size_at`]), which a walk follows only in part: secant steps on
/// log size against log λ from the probe's own λ and `size`, the first along the typical
/// slope, all within [`PREDICT_LAMBDA_RANGE`] of the probe's λ. `None` when the probe
/// gives no estimate.
fn predicted_lambda(
    probe: &impl RateProbe,
    size: usize,
    aim: f64,
    bpp: f64,
) -> Result<Option<f64>> {
    let lambda = probe.lambda();
    if lambda == 0.0 {
        return Ok(None);
    }
    // The estimate aimed at so that the walk, which follows it only in part, lands on
    // `aim`.
    let (from, to) = ((size as f64).ln(), aim.ln());
    let follows = estimate_follows(from, to, bpp);
    let (target, reach) = (from + (to - from) / follows, PREDICT_LAMBDA_RANGE.ln());
    let within_reach = |x: f64| x.clamp(lambda.ln() - reach, lambda.ln() + reach);
    // Points are (ln λ, ln size); the size falls as λ rises.
    let mut last = (lambda.ln(), (size as f64).ln());
    let mut guess = within_reach(last.0 + (last.1 - target) / TYPICAL_SLOPE);
    for _ in 0..PREDICT_STEPS {
        let Some(estimate) = probe.estimated_size_at(guess.exp()).transpose()? else {
            return Ok(None);
        };
        let point = (guess, (estimate.max(1) as f64).ln());
        if (point.1 - target).abs() < PREDICT_TOLERANCE {
            break;
        }
        let slope = (last.1 - point.1) / (point.0 - last.0);
        let slope = if slope.is_finite() && slope > 0.0 {
            slope.clamp(0.15, 2.0)
        } else {
            TYPICAL_SLOPE
        };
        last = point;
        guess = within_reach(point.0 + (point.1 - target) / slope);
    }
    Ok(Some(guess.exp()))
}

fn close_to(size: usize, budget: usize, tolerance: f64) -> bool {
    size <= budget && size as f64 >= (1.0 - tolerance) * budget as f64
}

/// Brings a probe of `size` bytes under the budget, and within [`TAIL_TOLERANCE`] of it, by
/// choosing its last layer again at a λ at most `range` times its own (further apart, the
/// layers' trade-offs would disagree too much to be worth it).
fn fit_last_layer(
    probe: &impl RateProbe,
    size: usize,
    budget: usize,
    range: f64,
) -> Result<Option<Vec<u8>>> {
    let lambda = probe.lambda();
    if lambda == 0.0 {
        return Ok(None);
    }
    let far = if size > budget {
        lambda * range
    } else {
        lambda / range
    };
    let Some(far_file) = probe.file_with_last_at(far).transpose()? else {
        return Ok(None);
    };
    // Bracket: `fits` gives a file within the budget, `bursts` one over it.
    let ((mut fits, mut best), mut bursts) = match (size > budget, far_file.len() <= budget) {
        (true, true) => ((far, far_file), lambda),
        (false, false) => ((lambda, Vec::new()), far),
        // The far end does not cross the budget: out of this probe's reach.
        (true, false) => return Ok(None),
        (false, true) => {
            return Ok(close_to(far_file.len(), budget, RATE_TOLERANCE).then_some(far_file))
        }
    };
    for _ in 0..TAIL_STEPS {
        if close_to(best.len(), budget, TAIL_TOLERANCE) {
            break;
        }
        let mid = ((fits.ln() + bursts.ln()) / 2.0).exp();
        let Some(file) = probe.file_with_last_at(mid).transpose()? else {
            return Ok(None);
        };
        if file.len() <= budget {
            (fits, best) = (mid, file);
        } else {
            bursts = mid;
        }
    }
    Ok(close_to(best.len(), budget, RATE_TOLERANCE).then_some(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the search starts for an image of typical activity.
    fn typical_start(bpp: f64) -> f64 {
        crate::codec::start_lambda(bpp, crate::codec::TYPICAL_ACTIVITY)
    }

    /// A walk whose file size follows `size(λ)`; with `last_layer_bytes`, choosing the
    /// last layer again at `λ'` moves the size by that many bytes per halving of `λ'/λ`.
    struct FakeProbe {
        lambda: f64,
        size: usize,
        last_layer_bytes: Option<f64>,
        /// Estimated sizes fall as `λ^-exponent` from the probe's own.
        estimate_exponent: Option<f64>,
    }

    impl RateProbe for FakeProbe {
        fn lambda(&self) -> f64 {
            self.lambda
        }
        fn file(&self) -> Result<Vec<u8>> {
            Ok(vec![0; self.size])
        }
        fn file_with_last_at(&self, lambda: f64) -> Option<Result<Vec<u8>>> {
            let per_halving = self.last_layer_bytes?;
            let shift = -per_halving * (lambda / self.lambda).log2();
            Some(Ok(vec![0; (self.size as f64 + shift).max(0.0) as usize]))
        }
        fn estimated_size_at(&self, lambda: f64) -> Option<Result<usize>> {
            let exponent = self.estimate_exponent?;
            Some(Ok(
                (self.size as f64 * (lambda / self.lambda).powf(-exponent)) as usize,
            ))
        }
    }

    fn sized(size: impl Fn(f64) -> usize) -> impl FnMut(f64) -> Result<FakeProbe> {
        move |lambda| {
            Ok(FakeProbe {
                lambda,
                size: size(lambda),
                last_layer_bytes: None,
                estimate_exponent: None,
            })
        }
    }

    /// The file `fit_budget` settles on, and how many walks it took, for sizes that fall
    /// as `start_size · (λ / λ₀)^-exponent` from the first probe's λ₀; with
    /// `estimate_exponent`, every walk's estimated sizes fall as `λ^-estimate_exponent`
    /// from its own.
    fn fit_power_law(
        budget: usize,
        start_size: f64,
        exponent: f64,
        last_layer_bytes: Option<f64>,
        estimate_exponent: Option<f64>,
    ) -> (usize, usize) {
        let first = typical_start(0.25);
        let mut walks = 0;
        let got = fit_budget(budget, 0.25, typical_start(0.25), Vec::new(), |lambda| {
            walks += 1;
            Ok(FakeProbe {
                lambda,
                size: (start_size * (lambda / first).powf(-exponent)) as usize,
                last_layer_bytes,
                estimate_exponent,
            })
        })
        .unwrap()
        .0
        .len();
        (got, walks)
    }

    #[test]
    fn the_last_layer_finishes_a_near_probe_without_another_walk() {
        // The first probe gives 10,500 bytes for a budget of 10,000; the last layer moves
        // 1,500 bytes per halving of its λ, so 1.3 times the λ brings it under.
        let (got, walks) = fit_power_law(10_000, 10_500.0, 0.5, Some(1_500.0), None);
        assert_eq!(walks, 1);
        assert!((9_900..=10_000).contains(&got), "{got}");
        // At 400 bytes per halving it would take 2.6 times the λ: walk again instead.
        let (got, walks) = fit_power_law(10_000, 10_500.0, 0.5, Some(400.0), None);
        assert!(walks > 1);
        assert!((9_700..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn a_probe_already_within_tolerance_is_filled_towards_the_budget_without_a_walk() {
        // 9,750 bytes is within 3 % of 10,000: the last layer, chosen again at a smaller λ,
        // adds bytes up to within 1 %.
        let (got, walks) = fit_power_law(10_000, 9_750.0, 0.5, Some(400.0), None);
        assert_eq!(walks, 1);
        assert!((9_900..=10_000).contains(&got), "{got}");
        // Without a last layer to choose again, the probe's own file is kept.
        let (got, walks) = fit_power_law(10_000, 9_750.0, 0.5, None, None);
        assert_eq!((got, walks), (9_750, 1));
    }

    #[test]
    fn a_last_layer_too_weak_to_reach_the_budget_leaves_it_to_the_walks() {
        let (got, walks) = fit_power_law(10_000, 20_000.0, 0.5, Some(100.0), None);
        assert!(walks > 1);
        assert!((9_700..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn a_walk_follows_less_of_a_long_way_down_than_of_a_short_one() {
        let (from, up) = (10_000f64.ln(), |factor: f64| 10_000f64.ln() + factor.ln());
        assert_eq!(
            estimate_follows(from, up(0.5), 0.25),
            ESTIMATE_FOLLOWS_RISING
        );
        let short = estimate_follows(from, up(1.1), 1.0);
        let long = estimate_follows(from, up(2.5), 1.0);
        assert!(
            long < short && short < ESTIMATE_FOLLOWS_FALLING,
            "{short} {long}"
        );
        let [least, most] = ESTIMATE_FOLLOWS_FALLING_RANGE;
        assert_eq!(estimate_follows(from, up(100.0), 1.0), least);
        // At a low rate the later layers code little either way: the walk follows more.
        assert!(estimate_follows(from, up(1.1), 0.1) > short);
        assert_eq!(estimate_follows(from, up(1.0), 1e-6), most);
    }

    #[test]
    fn a_walk_whose_estimates_move_as_typical_predicts_the_next_lambda() {
        // The first walk is 60 % over or 40 % under; slopes of 0.9 and 0.3 are far from
        // the typical 0.6, so only the estimates find the λ in one more walk. They move
        // more than the walks do, by the typical factors.
        for (budget, exponent) in [(10_000, 0.9), (10_000, 0.3), (25_000, 0.9), (25_000, 0.3)] {
            let aim = budget as f64 * (1.0 - RATE_TOLERANCE / 2.0);
            let follows = estimate_follows(16_000f64.ln(), aim.ln(), 0.25);
            let (got, walks) =
                fit_power_law(budget, 16_000.0, exponent, None, Some(exponent / follows));
            assert!(close_to(got, budget, RATE_TOLERANCE), "{got} for {budget}");
            assert_eq!(walks, 2, "budget {budget}, exponent {exponent}");
        }
    }

    #[test]
    fn a_first_guess_on_the_same_side_as_its_prediction_still_lets_the_next_walk_predict() {
        // The walks follow three quarters of their estimates' moves, not the nine tenths
        // assumed: the first prediction stops 8 % over the budget. Predicting again from
        // that nearer walk lands; stepping along the sizes' slope by at least 1.25 × λ
        // would overshoot below the budget and take a fourth walk.
        let exponent = 0.6;
        let (got, walks) = fit_power_law(10_000, 16_000.0, exponent, None, Some(exponent / 0.75));
        assert!(close_to(got, 10_000, RATE_TOLERANCE), "{got}");
        assert_eq!(walks, 3);
    }

    #[test]
    fn estimates_that_mislead_still_end_within_the_tolerance() {
        // Estimated sizes fall three times as fast as the walks' own.
        for budget in [5_000, 10_000, 30_000] {
            let (got, walks) = fit_power_law(budget, 16_000.0, 0.3, None, Some(0.9));
            assert!(close_to(got, budget, RATE_TOLERANCE), "{got} for {budget}");
            assert!(walks <= 6, "{walks} walks for {budget}");
        }
    }

    #[test]
    fn lands_just_under_the_budget() {
        let curve = |l: f64| (20_000.0 * (1.0 + l).powf(-0.4)) as usize;
        for budget in [900, 3_000, 7_000, 12_000] {
            let got = fit_budget(budget, 0.25, typical_start(0.25), Vec::new(), sized(curve))
                .unwrap()
                .0
                .len();
            assert!(
                got <= budget && got as f64 >= 0.97 * budget as f64,
                "{got} for {budget}"
            );
        }
    }

    #[test]
    fn extrapolates_along_the_measured_slope() {
        // Sizes follow λ^-0.3, flatter than the typical λ^-0.6 (12,000 bytes at λ = 1000),
        // and every probe lands on one side until the slope is measured.
        let start = 12_000.0 * (typical_start(0.25) / 1000.0).powf(-0.3);
        for budget in [5_000, 9_000, 30_000] {
            let (got, walks) = fit_power_law(budget, start, 0.3, None, None);
            assert!(close_to(got, budget, RATE_TOLERANCE), "{got} for {budget}");
            assert!(walks <= 4, "{walks} walks for {budget}");
        }
    }

    #[test]
    fn a_size_that_jumps_over_the_budget_stops_the_search_early() {
        // As for a one-pixel-high strip: the size drops from 647 to 551 bytes at one λ,
        // so nothing lands within 3 % under the budget of 625.
        let curve = |l: f64| {
            if l < 94_500.0 {
                (647.0 * (l / 94_500.0).powf(-0.6)) as usize
            } else {
                (551.0 * (l / 94_500.0).powf(-0.6)) as usize
            }
        };
        let mut walks = 0;
        let got = fit_budget(625, 0.25, typical_start(0.25), Vec::new(), |l| {
            walks += 1;
            sized(curve)(l)
        })
        .unwrap()
        .0
        .len();
        assert!((540..=625).contains(&got), "{got}");
        assert!(walks <= 8, "{walks} walks");
    }

    #[test]
    fn a_last_layer_fills_further_once_the_size_jumps_across_a_narrow_bracket() {
        // The size drops from 647 to 551 bytes at one λ (budget 625), and the last layer
        // moves 30 bytes per halving of its λ: 1.5 times the λ cannot bridge the jump,
        // four times can, and no walk could do better.
        let jump = |l: f64| {
            let base = if l < 94_500.0 { 647.0 } else { 551.0 };
            (base * (l / 94_500.0).powf(-0.6)) as usize
        };
        let mut walks = 0;
        let got = fit_budget(625, 0.25, typical_start(0.25), Vec::new(), |lambda| {
            walks += 1;
            Ok(FakeProbe {
                lambda,
                size: jump(lambda),
                last_layer_bytes: Some(30.0),
                estimate_exponent: None,
            })
        })
        .unwrap()
        .0
        .len();
        assert!(
            close_to(got, 625, RATE_TOLERANCE),
            "{got} after {walks} walks"
        );
    }

    #[test]
    fn a_best_file_just_over_the_budget_still_bisects() {
        // λ = 0 gives 10,300 bytes; the budget is 10,000.
        let curve = |l: f64| (10_300.0 * (1.0 + l / 50.0).powf(-0.5)) as usize;
        let got = fit_budget(10_000, 0.5, typical_start(0.5), Vec::new(), sized(curve))
            .unwrap()
            .0
            .len();
        assert!((9_700..=10_000).contains(&got), "{got}");
    }

    #[test]
    fn a_roomy_budget_gives_the_best_file() {
        let curve = |l: f64| (5_000.0 * (1.0 + l / 50.0).powf(-0.5)) as usize;
        assert_eq!(
            fit_budget(100_000, 0.5, typical_start(0.5), Vec::new(), sized(curve))
                .unwrap()
                .0
                .len(),
            5_000
        );
    }
}
