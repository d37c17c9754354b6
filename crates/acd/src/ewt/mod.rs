//! Estimated wait (DESIGN.md, "Estimated wait: a promise callers can hold us to").
//!
//! Two estimators live here so they can be compared on the same evenings:
//! - [`ExpAverage`], the classic PBX estimate: an exponential average of the holds of answered
//!   callers. It ignores how many callers are ahead and how many agents work, which is why,
//!   read as "less than N minutes", it holds for fewer than half of the callers;
//! - [`predict`], the state-based predictor: with k callers ahead, s agents at work, a handling
//!   rate μ per agent and an abandonment rate θ per waiting caller, the caller moves up one place
//!   at each departure ahead of them — a service completion (rate sμ) or one of the j callers
//!   still ahead giving up (rate jθ) — so their wait is the sum of k+1 exponential stages of
//!   rates sμ + jθ, j = k…0 (Erlang-A seen from a waiting caller). We announce its 90th
//!   percentile rounded up to the minute and use its median as the point estimate.
//!
//! [`History`] feeds μ and θ from what the Acd observed.

mod history;
mod hypoexp;

pub use history::History;
pub use hypoexp::{BadRate, Hypoexponential};

use std::time::Duration;

/// What to tell a caller about their wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEstimate {
    /// The median: the point estimate (wallboards, statistics).
    pub p50: Duration,
    /// The 90th percentile: the promise.
    pub p90: Duration,
    /// `p90` rounded up to the whole minute, at least 1: "moins de N minutes".
    /// 0 means there is no bound to announce (no agent at work): say nothing about the wait.
    pub announce_minutes: u32,
}

impl WaitEstimate {
    /// No agent at work: the wait has no bound.
    pub const UNBOUNDED: WaitEstimate = WaitEstimate {
        p50: Duration::MAX,
        p90: Duration::MAX,
        announce_minutes: 0,
    };

    /// From quantiles in seconds.
    pub fn from_quantiles(p50: f64, p90: f64) -> Self {
        // A day is far beyond any announcement; past it (or NaN) there is nothing sensible to say.
        const DAY: f64 = 86_400.0;
        // NaN first (`max` would hide it), then the bound after the clamps, all before
        // `from_secs_f64`, which panics on huge values.
        if !(p50.is_finite() && p90.is_finite()) {
            return Self::UNBOUNDED;
        }
        let p50 = p50.max(0.0);
        let p90 = p90.max(p50);
        if p90 > DAY {
            return Self::UNBOUNDED;
        }
        // Rounded up so the announced bound is never below the 90th percentile.
        let minutes = (p90 / 60.0).ceil().max(1.0) as u32;
        WaitEstimate {
            p50: Duration::from_secs_f64(p50),
            p90: Duration::from_secs_f64(p90),
            announce_minutes: minutes,
        }
    }

    pub fn is_bounded(&self) -> bool {
        self.announce_minutes > 0
    }

    /// The announced bound as a duration (`None` if unbounded).
    pub fn announced(&self) -> Option<Duration> {
        self.is_bounded()
            .then(|| Duration::from_secs(60 * u64::from(self.announce_minutes)))
    }
}

/// The state a prediction is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueState {
    /// Callers (and callbacks) ahead in line.
    pub ahead: usize,
    /// Agents logged in, reachable and not paused: available, ringing, talking or in wrap-up.
    pub staffed: usize,
    /// Among them, those available right now.
    pub idle: usize,
    /// Handling rate of one agent, per second (1 / mean handling time).
    pub mu: f64,
    /// Abandonment rate of one waiting caller, per second (1 / mean patience).
    pub theta: f64,
}

/// Beyond this many callers ahead the wait is computed as if there were this many: the
/// announcement is long saturated and the computation stays bounded.
pub const MAX_AHEAD: usize = 2000;

/// The state-based predictor.
pub fn predict(state: &QueueState) -> WaitEstimate {
    match stages(state) {
        Stages::Immediate => WaitEstimate::from_quantiles(0.0, 0.0),
        Stages::Unbounded => WaitEstimate::UNBOUNDED,
        Stages::Sum(h) => {
            let q = h.quantiles(&[0.5, 0.9]);
            WaitEstimate::from_quantiles(q[0], q[1])
        }
    }
}

/// The wait distribution behind [`predict`].
#[derive(Debug, Clone, PartialEq)]
pub enum Stages {
    /// An agent is free for this caller: no wait.
    Immediate,
    /// Nobody at work: no bound.
    Unbounded,
    Sum(Hypoexponential),
}

pub fn stages(state: &QueueState) -> Stages {
    let staffed = state.staffed.max(state.idle);
    if state.ahead < state.idle {
        return Stages::Immediate;
    }
    // The first `idle` callers ahead are taken at once; the rest wait with every agent busy.
    let k = (state.ahead - state.idle).min(MAX_AHEAD);
    let service = staffed as f64 * state.mu;
    let theta = if state.theta.is_finite() {
        state.theta.max(0.0)
    } else {
        0.0
    };
    if !service.is_finite() || service <= 0.0 {
        return Stages::Unbounded;
    }
    let rates = (0..=k).map(|j| service + j as f64 * theta).collect();
    match Hypoexponential::new(rates) {
        Ok(h) => Stages::Sum(h),
        Err(BadRate) => Stages::Unbounded,
    }
}

/// The classic estimator: `avg ← (1 − α)·avg + α·hold` over answered callers' holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpAverage {
    alpha: f64,
    value: Option<f64>,
}

impl ExpAverage {
    /// The weight of Asterisk's `holdtime` (new = (3·old + hold) / 4), the usual PBX figure.
    pub const CLASSIC_ALPHA: f64 = 0.25;

    pub fn new(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() {
            alpha.clamp(0.0, 1.0)
        } else {
            Self::CLASSIC_ALPHA
        };
        ExpAverage { alpha, value: None }
    }

    pub fn update(&mut self, hold: Duration) {
        let x = hold.as_secs_f64();
        self.value = Some(match self.value {
            None => x,
            Some(v) => (1.0 - self.alpha) * v + self.alpha * x,
        });
    }

    pub fn value(&self) -> Option<Duration> {
        self.value.map(Duration::from_secs_f64)
    }

    /// The average read as a promise, as PBXs announce it: "less than ⌈avg⌉ minutes".
    pub fn estimate(&self) -> Option<WaitEstimate> {
        self.value.map(|v| WaitEstimate::from_quantiles(v, v))
    }
}

impl Default for ExpAverage {
    fn default() -> Self {
        Self::new(Self::CLASSIC_ALPHA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ahead: usize, staffed: usize, idle: usize) -> QueueState {
        QueueState {
            ahead,
            staffed,
            idle,
            mu: 1.0 / 300.0,
            theta: 1.0 / 600.0,
        }
    }

    #[test]
    fn free_agent_means_no_wait() {
        let e = predict(&state(0, 3, 1));
        assert_eq!(e.p90, Duration::ZERO);
        assert_eq!(e.announce_minutes, 1);
    }

    #[test]
    fn nobody_at_work_is_unbounded() {
        let e = predict(&state(2, 0, 0));
        assert!(!e.is_bounded());
        assert_eq!(e.announced(), None);
    }

    #[test]
    fn more_ahead_waits_longer_and_more_agents_shorter() {
        let a = predict(&state(2, 3, 0));
        let b = predict(&state(6, 3, 0));
        let c = predict(&state(6, 6, 0));
        assert!(a.p90 < b.p90 && c.p90 < b.p90, "{a:?} {b:?} {c:?}");
        assert!(a.p50 < a.p90);
        // One caller ahead, 3 agents at 5 min, no abandons: 2 stages of rate 0.01/s.
        let e = predict(&QueueState {
            theta: 0.0,
            ..state(1, 3, 0)
        });
        // Erlang(2, 0.01): median ≈ 167.8 s, p90 ≈ 389.0 s.
        assert!((e.p50.as_secs_f64() - 167.83).abs() < 0.5, "{e:?}");
        assert!((e.p90.as_secs_f64() - 388.97).abs() < 0.5, "{e:?}");
        assert_eq!(e.announce_minutes, 7);
    }

    #[test]
    fn announce_rounds_up() {
        assert_eq!(WaitEstimate::from_quantiles(10.0, 60.0).announce_minutes, 1);
        assert_eq!(WaitEstimate::from_quantiles(10.0, 60.5).announce_minutes, 2);
        assert_eq!(
            WaitEstimate::from_quantiles(10.0, 299.0).announce_minutes,
            5
        );
        assert!(!WaitEstimate::from_quantiles(f64::INFINITY, 1.0).is_bounded());
        assert!(!WaitEstimate::from_quantiles(1e300, 1.0).is_bounded());
        assert!(!WaitEstimate::from_quantiles(f64::NAN, f64::NAN).is_bounded());
    }

    #[test]
    fn exp_average_moves_a_quarter_of_the_way() {
        let mut a = ExpAverage::default();
        assert_eq!(a.value(), None);
        a.update(Duration::from_secs(100));
        a.update(Duration::from_secs(200));
        assert_eq!(a.value(), Some(Duration::from_secs(125)));
    }
}
