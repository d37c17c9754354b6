//! The distribution of a sum of independent exponential stages (hypoexponential).
//!
//! Why uniformization and not the textbook closed form: the closed form
//! `P(T > t) = Σ_j c_j e^{-r_j t}` with `c_j = Π_{i≠j} r_i / (r_i − r_j)` needs distinct rates
//! (ours coincide when θ = 0) and its coefficients alternate in sign and grow like binomials:
//! with 30 stages it loses every significant digit. Uniformization (Jensen's method) only adds
//! non-negative terms: with Λ ≥ every rate, the stage process is a discrete chain that advances
//! with probability `r_j/Λ` at the events of a Poisson process of rate Λ, so
//! `P(T ≤ t) = Σ_n Poisson(n; Λt) · F_n` where `F_n` = P(all stages done within n chain steps).
//! `F_n` does not depend on t, so it is computed once and reused by every CDF evaluation of a
//! quantile search.

/// A sum of independent exponential stages with the given rates (per second).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypoexponential {
    rates: Vec<f64>,
}

/// Refuses rates that would make the sum infinite or meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every stage rate must be finite and > 0")]
pub struct BadRate;

impl Hypoexponential {
    pub fn new(rates: Vec<f64>) -> Result<Self, BadRate> {
        if rates.iter().any(|r| !r.is_finite() || *r <= 0.0) {
            return Err(BadRate);
        }
        Ok(Hypoexponential { rates })
    }

    pub fn rates(&self) -> &[f64] {
        &self.rates
    }

    /// Mean, in seconds.
    pub fn mean(&self) -> f64 {
        self.rates.iter().map(|r| 1.0 / r).sum()
    }

    /// Variance, in seconds².
    pub fn variance(&self) -> f64 {
        self.rates.iter().map(|r| 1.0 / (r * r)).sum()
    }

    /// P(T ≤ t), t in seconds.
    pub fn cdf(&self, t: f64) -> f64 {
        Uniformized::new(&self.rates).cdf(t)
    }

    /// The smallest t (seconds, to 0.1 s) with P(T ≤ t) ≥ p, for 0 < p < 1.
    pub fn quantile(&self, p: f64) -> f64 {
        self.quantiles(&[p])[0]
    }

    /// Several quantiles sharing one uniformized chain.
    pub fn quantiles(&self, ps: &[f64]) -> Vec<f64> {
        let mut u = Uniformized::new(&self.rates);
        ps.iter().map(|&p| u.quantile(p)).collect()
    }
}

/// The uniformized chain, with the absorption probabilities `F_n` computed lazily.
struct Uniformized {
    rates: Vec<f64>,
    lambda: f64,
    /// Probability of being in each stage after the last computed step.
    stage: Vec<f64>,
    /// `absorbed[n]` = F_n.
    absorbed: Vec<f64>,
    /// `ln_fact[n]` = ln n!, for the Poisson weights.
    ln_fact: Vec<f64>,
}

/// Once the chain is this close to done, later steps change nothing visible.
const DONE: f64 = 1.0 - 1e-15;

impl Uniformized {
    fn new(rates: &[f64]) -> Self {
        let lambda = rates.iter().copied().fold(0.0, f64::max);
        let mut stage = vec![0.0; rates.len()];
        let absorbed = if let Some(first) = stage.first_mut() {
            *first = 1.0;
            vec![0.0]
        } else {
            vec![1.0] // no stage at all: done at once
        };
        Uniformized {
            rates: rates.to_vec(),
            lambda,
            stage,
            absorbed,
            ln_fact: vec![0.0],
        }
    }

    /// F_n, extending the chain as far as needed.
    fn f(&mut self, n: usize) -> f64 {
        while self.absorbed.len() <= n {
            let last = *self.absorbed.last().unwrap_or(&1.0);
            if last >= DONE || self.lambda <= 0.0 {
                self.absorbed.push(last);
                continue;
            }
            // One step: each stage keeps what does not advance and receives what advanced from
            // the stage before it (computed from the old values, carried in `inflow`).
            let mut inflow = 0.0;
            for (p, r) in self.stage.iter_mut().zip(&self.rates) {
                let moved = *p * (r / self.lambda);
                *p = *p - moved + inflow;
                inflow = moved;
            }
            let done = last + inflow;
            self.absorbed.push(done.min(1.0));
        }
        self.absorbed[n]
    }

    fn ln_fact(&mut self, n: usize) -> f64 {
        while self.ln_fact.len() <= n {
            let k = self.ln_fact.len();
            let prev = self.ln_fact[k - 1];
            self.ln_fact.push(prev + (k as f64).ln());
        }
        self.ln_fact[n]
    }

    fn cdf(&mut self, t: f64) -> f64 {
        if self.rates.is_empty() {
            return 1.0;
        }
        if t.is_nan() || t <= 0.0 {
            return 0.0;
        }
        let m = self.lambda * t;
        // Poisson(m) puts less than 1e-15 of its mass beyond 8 standard deviations (+ slack for
        // small m); F_n is in [0, 1], so the truncated sum is exact to that order.
        let spread = 8.0 * m.sqrt() + 10.0;
        let lo = (m - spread).floor().max(0.0) as usize;
        let hi = (m + spread).ceil() as usize;
        // The first weight from logs (no overflow of m^n or n!), the next ones by the recurrence
        // w(n) = w(n-1)·m/n. At `lo` the log weight is about −spread²/2m ≥ −50 (or −m ≥ −100
        // when lo = 0), far from underflow.
        let mut w = (lo as f64 * m.ln() - m - self.ln_fact(lo)).exp();
        let mut sum = 0.0;
        for n in lo..=hi {
            if n > lo {
                w *= m / n as f64;
            }
            sum += w * self.f(n);
        }
        // Below `lo` nothing is counted although F_n may be > 0 there: only when the weights
        // are < 1e-15, so clamping is all that is left to do.
        sum.clamp(0.0, 1.0)
    }

    fn quantile(&mut self, p: f64) -> f64 {
        if self.rates.is_empty() || p <= 0.0 {
            return 0.0;
        }
        let p = p.min(1.0 - 1e-12);
        let mean: f64 = self.rates.iter().map(|r| 1.0 / r).sum();
        let sd = self.rates.iter().map(|r| 1.0 / (r * r)).sum::<f64>().sqrt();
        let (mut lo, mut f_lo) = (0.0, 0.0);
        let mut hi = mean + 2.0 * sd;
        let mut f_hi = self.cdf(hi);
        let mut guard = 0;
        while f_hi < p && guard < 60 {
            (lo, f_lo) = (hi, f_hi);
            hi *= 2.0;
            f_hi = self.cdf(hi);
            guard += 1;
        }
        // Regula falsi with the Illinois fix: the CDF is smooth and increasing, so this takes
        // a handful of evaluations where bisection to 0.1 s takes fifteen or more (the CDF is
        // what costs, and estimates are made for every announcement).
        let mut side = 0i8;
        for _ in 0..100 {
            if hi - lo <= 0.1 {
                break;
            }
            let x = if f_hi > f_lo {
                (lo + (p - f_lo) * (hi - lo) / (f_hi - f_lo)).clamp(lo, hi)
            } else {
                0.5 * (lo + hi)
            };
            let fx = self.cdf(x);
            // Within 1e-6 of p the time error is below 1e-6 × (a few means): nothing to gain.
            if (fx - p).abs() < 1e-6 {
                return x;
            }
            if fx >= p {
                (hi, f_hi) = (x, fx);
                if side == 1 {
                    f_lo = p - (p - f_lo) / 2.0;
                }
                side = 1;
            } else {
                (lo, f_lo) = (x, fx);
                if side == -1 {
                    f_hi = p + (f_hi - p) / 2.0;
                }
                side = -1;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stage_is_exponential() {
        let h = Hypoexponential::new(vec![0.5]).unwrap();
        for t in [0.1, 1.0, 2.0, 7.5] {
            let want = 1.0 - (-0.5f64 * t).exp();
            assert!((h.cdf(t) - want).abs() < 1e-12, "t={t}");
        }
        let median = h.quantile(0.5);
        assert!((median - 2.0f64.ln() / 0.5).abs() < 0.1, "{median}");
    }

    #[test]
    fn equal_rates_are_erlang() {
        // Erlang(k, r): P(T ≤ t) = 1 − e^{−rt} Σ_{i<k} (rt)^i / i!
        let (k, r) = (25usize, 0.02);
        let h = Hypoexponential::new(vec![r; k]).unwrap();
        for t in [200.0, 1000.0, 1250.0, 2500.0] {
            let x = r * t;
            let mut term = 1.0;
            let mut s = 0.0;
            for i in 0..k {
                if i > 0 {
                    term *= x / i as f64;
                }
                s += term;
            }
            let want = 1.0 - (-x).exp() * s;
            assert!(
                (h.cdf(t) - want).abs() < 1e-10,
                "t={t}: {} vs {want}",
                h.cdf(t)
            );
        }
    }

    #[test]
    fn distinct_rates_match_closed_form() {
        let rates = vec![0.01, 0.013, 0.017, 0.031];
        let h = Hypoexponential::new(rates.clone()).unwrap();
        for t in [10.0, 100.0, 300.0, 900.0] {
            let mut surv = 0.0;
            for (j, rj) in rates.iter().enumerate() {
                let mut c = 1.0;
                for (i, ri) in rates.iter().enumerate() {
                    if i != j {
                        c *= ri / (ri - rj);
                    }
                }
                surv += c * (-rj * t).exp();
            }
            assert!((h.cdf(t) - (1.0 - surv)).abs() < 1e-10, "t={t}");
        }
    }

    #[test]
    fn refuses_bad_rates() {
        assert!(Hypoexponential::new(vec![1.0, 0.0]).is_err());
        assert!(Hypoexponential::new(vec![f64::NAN]).is_err());
        assert!(Hypoexponential::new(vec![f64::INFINITY]).is_err());
    }
}
