//! R1 backoff: the wait before the next attempt, from a seeded generator.

use std::time::Duration;

use crate::config::ReconnectPolicy;

/// The smallest wait ever scheduled: R1 says never zero, even with full jitter.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// SplitMix64: tiny, fast, and deterministic for a given seed, which is all jitter needs.
/// (No global RNG in the core: every run with the same seed makes the same choices.)
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// R1: `b_n = min(max_delay, initial · multiplier^n)`.
pub fn ceiling(policy: &ReconnectPolicy, n: u32) -> Duration {
    let factor = policy.multiplier.powi(n.min(1_000) as i32);
    let secs = policy.initial.as_secs_f64() * factor;
    if !secs.is_finite() || secs >= policy.max_delay.as_secs_f64() {
        return policy.max_delay;
    }
    // Below `max_delay` as an f64 yet maybe beyond `Duration` (the f64 rounds up): the cap.
    Duration::try_from_secs_f64(secs).map_or(policy.max_delay, |d| d.min(policy.max_delay))
}

/// R1: the `k`-th wait of an outage (from 0), after the n-th consecutive failure (n from 0), in
/// `[b_n·(1−j), b_n]`, never below [`MIN_DELAY`].
///
/// `draw` ∈ [0, 1) is the client's phase, drawn once per outage. The attempts of a client fall
/// at `G(k + draw)` on one schedule `G` shared by the fleet: `G(0) = b_0·(1−j)`, then steps of
/// `j·b_0·m^i` (at most `max_delay`), geometric within each step so that G's slope is
/// continuous. With the phases uniform, a client's first attempt after the server returns at any
/// instant `T` is `G(x)` with `x` uniform on the one step past `G⁻¹(T)`: the arrivals' density
/// varies only as G's slope does across one step, by at most `(m−1)/ln m` (1.23 for m = 1.5) and
/// not at all once the waits reach `max_delay`, so a fleet arrives spread whenever its outage
/// ends (the herd test sweeps outages from 0 to 30 s). Each wait lies between the steps on
/// either side of it, inside R1's band for `½ ≤ j ≤ 1/m` (the default 0.5 with m = 1.5); outside
/// that, R1's band wins. (Scaling one schedule per client, `b_n·(1−j·draw)`, as before, let
/// consecutive waves of the fleet overlap after short outages: twice the even rate after 1–5 s.)
pub fn delay(policy: &ReconnectPolicy, n: u32, k: u32, draw: f64) -> Duration {
    let b = ceiling(policy, n);
    let (b0, j) = (policy.initial.as_secs_f64(), policy.jitter);
    // The step of G after index i, in seconds: `j·b_0·m^i`, at most `max_delay`.
    let max = policy.max_delay.as_secs_f64();
    let step = |i: u32| {
        let s = b0 * j * policy.multiplier.powi(i.min(1_000) as i32);
        if s.is_finite() {
            s.min(max)
        } else {
            max
        }
    };
    // Within step i, G rises as `step(i)·h(ρ_i, f)`, `ρ_i = step(i+1)/step(i)`: geometric where
    // the steps grow, so G's slope is continuous and the arrivals' density varies by at most
    // `(m−1)/ln m` (1.23 for m = 1.5) instead of jumping by `m` at every whole index.
    let ratio = |i: u32| {
        let (here, next) = (step(i), step(i + 1));
        if here > 0.0 {
            next / here
        } else {
            1.0
        }
    };
    let rise = |i: u32, f: f64| step(i) * h(ratio(i), f);
    let wait = match k {
        0 => b0 * (1.0 - j) + rise(0, draw),
        k => step(k - 1) + rise(k, draw) - rise(k - 1, draw),
    };
    let wait = Duration::try_from_secs_f64(wait).unwrap_or(b);
    // `b·j`, without `mul_f64`, which panics where the product's f64 rounds past `MAX`.
    let shave = Duration::try_from_secs_f64(b.as_secs_f64() * j).map_or(b, |s| s.min(b));
    wait.clamp(b.saturating_sub(shave), b).max(MIN_DELAY)
}

/// `(ρ^f − 1)/(ρ − 1)`: 0 at `f = 0`, 1 at `f = 1`, geometric in between; `f` itself for
/// `ρ` near 1 (and for a `ρ` that is not a finite number above 0).
fn h(rho: f64, f: f64) -> f64 {
    if !(rho.is_finite() && rho > 0.0) || (rho - 1.0).abs() < 1e-9 {
        return f;
    }
    (rho.powf(f) - 1.0) / (rho - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_then_caps() {
        let p = ReconnectPolicy::default().multiplier(2.0);
        assert_eq!(ceiling(&p, 0), Duration::from_secs(1));
        assert_eq!(ceiling(&p, 1), Duration::from_secs(2));
        assert_eq!(ceiling(&p, 2), Duration::from_secs(4));
        assert_eq!(ceiling(&p, 3), p.max_delay);
        assert_eq!(ceiling(&p, u32::MAX), p.max_delay);
    }

    #[test]
    fn same_seed_same_draws() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..20 {
            let x = a.unit();
            assert_eq!(x, b.unit());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn full_jitter_is_never_zero() {
        let p = ReconnectPolicy::default().jitter(1.0);
        let mut rng = Rng::new(1);
        for n in 0..10_000 {
            assert!(delay(&p, n % 8, n % 9, rng.unit()) >= MIN_DELAY);
        }
        assert_eq!(delay(&p, 0, 0, 0.0), MIN_DELAY);
    }
}
