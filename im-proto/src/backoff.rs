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

/// R1: the wait after the n-th consecutive failure (n from 0), in `[b_n·(1−j), b_n]`, never below
/// [`MIN_DELAY`].
///
/// `draw` ∈ [0, 1) places the wait in its band. The client draws it once per outage, not once
/// per attempt: every client then follows a scaled copy of one schedule, so a fleet that lost a
/// server at the same instant stays spread evenly across the band at every attempt. Independent
/// per-attempt draws add up to a bell curve and the fleet re-bunches (the herd test shows both).
pub fn delay(policy: &ReconnectPolicy, n: u32, draw: f64) -> Duration {
    let b = ceiling(policy, n);
    // `mul_f64` panics where the product's f64 rounds past `Duration::MAX`.
    let shave =
        Duration::try_from_secs_f64(b.as_secs_f64() * policy.jitter * draw).map_or(b, |s| s.min(b));
    b.saturating_sub(shave).max(MIN_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_then_caps() {
        let p = ReconnectPolicy {
            multiplier: 2.0,
            ..ReconnectPolicy::default()
        };
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
        let p = ReconnectPolicy {
            jitter: 1.0,
            ..ReconnectPolicy::default()
        };
        let mut rng = Rng::new(1);
        for n in 0..10_000 {
            assert!(delay(&p, n % 8, rng.unit()) >= MIN_DELAY);
        }
        assert_eq!(delay(&p, 0, 1.0), MIN_DELAY);
    }
}
