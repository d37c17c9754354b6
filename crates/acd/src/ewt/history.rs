//! What a queue observed, reduced to the two rates of the predictor.

use std::collections::VecDeque;
use std::time::Duration;

/// Talks kept for μ: recent enough to follow the evening, many enough to average out.
pub const TALK_WINDOW: usize = 100;
/// Below this many talks, the configured `default_talk` is used: a handful of calls says little.
pub const MIN_TALKS: usize = 10;
/// Waits kept for θ: abandons are rarer than talks, so θ is pooled over several days.
pub const WAIT_WINDOW: usize = 2000;
/// Weight of the configured patience, in abandons: θ = (A + 3) / (E + 3·patience). With no
/// history that is 1/default_patience; after a few dozen abandons the observations dominate.
pub const PRIOR_ABANDONS: f64 = 3.0;

/// Observed talks and waits of one queue.
#[derive(Debug, Clone)]
pub struct History {
    default_talk: f64,
    default_patience: f64,
    /// Added to every talk: an agent in wrap-up cannot take the next caller either, so the
    /// caller waits for talk + wrap-up per departure.
    wrap_up: f64,
    talks: VecDeque<f64>,
    /// (wait in seconds, abandoned?) — served and overflowed callers count as censored
    /// patience: they waited that long without giving up.
    waits: VecDeque<(f64, bool)>,
    exposure: f64,
    abandons: usize,
    updates: usize,
}

impl History {
    pub fn new(default_talk: Duration, default_patience: Duration, wrap_up: Duration) -> Self {
        History {
            default_talk: default_talk.as_secs_f64().max(1e-3),
            default_patience: default_patience.as_secs_f64().max(1e-3),
            wrap_up: wrap_up.as_secs_f64(),
            talks: VecDeque::new(),
            waits: VecDeque::new(),
            exposure: 0.0,
            abandons: 0,
            updates: 0,
        }
    }

    pub fn record_talk(&mut self, talk: Duration) {
        let x = talk.as_secs_f64();
        self.talks.push_back(x);
        if self.talks.len() > TALK_WINDOW {
            self.talks.pop_front();
        }
    }

    pub fn record_wait(&mut self, wait: Duration, abandoned: bool) {
        let x = wait.as_secs_f64();
        // The running sums are exact enough: they are recomputed from the window every
        // WAIT_WINDOW updates so rounding cannot drift over months.
        self.waits.push_back((x, abandoned));
        self.exposure += x;
        self.abandons += usize::from(abandoned);
        if self.waits.len() > WAIT_WINDOW {
            if let Some((old, ab)) = self.waits.pop_front() {
                self.exposure -= old;
                self.abandons -= usize::from(ab);
            }
            self.updates += 1;
            if self.updates % WAIT_WINDOW == 0 {
                self.exposure = self.waits.iter().map(|w| w.0).sum();
            }
        }
    }

    pub fn talks(&self) -> usize {
        self.talks.len()
    }

    /// Mean handling time (talk + wrap-up), seconds.
    pub fn handling_time(&self) -> f64 {
        let talk = if self.talks.len() < MIN_TALKS {
            self.default_talk
        } else {
            self.talks.iter().sum::<f64>() / self.talks.len() as f64
        };
        (talk + self.wrap_up).max(1e-3)
    }

    /// μ per agent, per second.
    pub fn mu(&self) -> f64 {
        1.0 / self.handling_time()
    }

    /// θ per waiting caller, per second: the maximum-likelihood rate of exponential patience
    /// (abandons over total waiting time), shrunk towards the configured patience.
    pub fn theta(&self) -> f64 {
        (self.abandons as f64 + PRIOR_ABANDONS)
            / (self.exposure.max(0.0) + PRIOR_ABANDONS * self.default_patience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_until_enough_talks() {
        let mut h = History::new(
            Duration::from_secs(300),
            Duration::from_secs(180),
            Duration::from_secs(10),
        );
        assert!((h.handling_time() - 310.0).abs() < 1e-9);
        assert!((h.theta() - 1.0 / 180.0).abs() < 1e-12);
        for _ in 0..MIN_TALKS {
            h.record_talk(Duration::from_secs(100));
        }
        assert!((h.handling_time() - 110.0).abs() < 1e-9);
        for _ in 0..(TALK_WINDOW * 3) {
            h.record_talk(Duration::from_secs(200));
        }
        assert!((h.handling_time() - 210.0).abs() < 1e-9);
    }

    #[test]
    fn theta_follows_observed_abandons() {
        let mut h = History::new(
            Duration::from_secs(300),
            Duration::from_secs(180),
            Duration::ZERO,
        );
        // Patience with mean 60 s: 1000 abandons over 60 000 s of waiting.
        for _ in 0..1000 {
            h.record_wait(Duration::from_secs(60), true);
        }
        assert!((1.0 / h.theta() - 60.0).abs() < 1.0, "{}", 1.0 / h.theta());
    }
}
