//! The state-based predictor against a Monte Carlo simulation of the queue it models: k callers
//! ahead, s agents all busy with exponential handling (rate μ each, memoryless so the remaining
//! time is exponential too), each caller ahead abandoning at rate θ. The simulation moves the
//! queue event by event — it does not sum the stages the predictor sums — so it checks the
//! modelling step (stages of rate sμ + jθ) as well as the numerics.

mod common;
use common::rng::Rng;
use ld_acd::ewt::{predict, stages, QueueState, Stages};

/// One simulated wait: time until our caller (behind `ahead` others) is taken by an agent.
fn simulate_wait(rng: &mut Rng, st: &QueueState) -> f64 {
    let mut t = 0.0;
    let mut ahead = st.ahead;
    let mut free = st.idle;
    loop {
        // Free agents take the callers at the head at once (our caller included).
        if free > ahead {
            return t;
        }
        ahead -= free;
        free = 0;
        // Competing exponential clocks: each busy agent finishing, each caller ahead leaving.
        let busy = st.staffed as f64;
        let total = busy * st.mu + ahead as f64 * st.theta;
        t += rng.exp(total);
        if rng.f64() * total < busy * st.mu {
            free = 1; // an agent finished: takes the head of the line
        } else {
            ahead -= 1; // one caller ahead hung up
        }
    }
}

#[test]
fn predictor_matches_monte_carlo() {
    const N: usize = 20_000;
    let mut rng = Rng::new(2024);
    let mu = 1.0 / 300.0;
    let mut worst: f64 = 0.0;
    for (ahead, staffed, idle, theta) in [
        (0, 3, 0, 0.0),
        (3, 3, 0, 1.0 / 240.0),
        (10, 3, 0, 1.0 / 600.0),
        (30, 6, 0, 1.0 / 120.0),
        (8, 4, 2, 1.0 / 300.0),
        (20, 5, 0, 0.0),
    ] {
        let st = QueueState {
            ahead,
            staffed,
            idle,
            mu,
            theta,
        };
        let e = predict(&st);
        let Stages::Sum(dist) = stages(&st) else {
            panic!("expected a wait for {st:?}");
        };
        let mut waits: Vec<f64> = (0..N).map(|_| simulate_wait(&mut rng, &st)).collect();
        waits.sort_by(f64::total_cmp);
        let frac = |x: f64| waits.partition_point(|w| *w <= x) as f64 / N as f64;
        // Binomial sd at 0.9 is 0.0021 for N = 20 000: 4 sd is 0.0085.
        let at50 = frac(e.p50.as_secs_f64());
        let at90 = frac(e.p90.as_secs_f64());
        let announced = frac(60.0 * e.announce_minutes as f64);
        // Kolmogorov–Smirnov distance between the computed and the simulated CDFs.
        let ks = waits
            .iter()
            .enumerate()
            .step_by(N / 400)
            .map(|(i, w)| (dist.cdf(*w) - (i as f64 + 0.5) / N as f64).abs())
            .fold(0.0, f64::max);
        worst = worst.max(ks);
        println!(
            "k={ahead:2} s={staffed} idle={idle} 1/θ={:>4.0}s: p50 {:6.1}s (sim {:.3}), p90 {:6.1}s (sim {:.3}), \
             announced {} min (sim {:.3}), KS {:.4}",
            if theta > 0.0 { 1.0 / theta } else { f64::INFINITY },
            e.p50.as_secs_f64(),
            at50,
            e.p90.as_secs_f64(),
            at90,
            e.announce_minutes,
            announced,
            ks
        );
        assert!((at50 - 0.5).abs() < 0.012, "median off: {at50}");
        assert!((at90 - 0.9).abs() < 0.0085, "p90 off: {at90}");
        assert!(announced >= at90);
        assert!(ks < 0.012, "KS distance {ks}");
    }
    println!("worst KS distance {worst:.4}");
}

#[test]
fn a_free_agent_for_the_caller_means_no_wait_in_both() {
    let st = QueueState {
        ahead: 1,
        staffed: 3,
        idle: 2,
        mu: 0.01,
        theta: 0.01,
    };
    assert_eq!(stages(&st), Stages::Immediate);
    let mut rng = Rng::new(1);
    assert_eq!(simulate_wait(&mut rng, &st), 0.0);
}
