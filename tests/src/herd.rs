//! The herd figure: how a fleet's reconnects after a restart are spread, as the busiest
//! 100 ms against the even rate (README, "Performance"). Used by `bench --herd` and `fleet`.

use std::time::Duration;

use im_proto::ReconnectPolicy;

/// The window the busiest rate is counted over.
pub const WINDOW: Duration = Duration::from_millis(100);

/// The most arrivals (sorted offsets) within any one [`WINDOW`].
pub fn peak(arrivals: &[Duration]) -> usize {
    busiest(arrivals).1
}

/// The busiest [`WINDOW`] of `arrivals` (sorted offsets): when it starts, and how many it holds.
pub fn busiest(arrivals: &[Duration]) -> (Duration, usize) {
    let (mut best, mut at, mut j) = (0, Duration::ZERO, 0);
    for i in 0..arrivals.len() {
        while j < arrivals.len() && arrivals[j] < arrivals[i] + WINDOW {
            j += 1;
        }
        if j - i > best {
            (best, at) = (j - i, arrivals[i]);
        }
    }
    (at, best)
}

/// The arrivals' own spread, first to last (at least one [`WINDOW`]).
pub fn spread(arrivals: &[Duration]) -> Duration {
    (*arrivals.last().unwrap() - arrivals[0]).max(WINDOW)
}

/// The spread a policy means a fleet to arrive over after a restart with no outage, and how
/// many `arrivals` fell outside it. Every client's first reconnect waits `d ∈ [b_0·(1−j), b_0]`
/// (R1), a window of `j·b_0` (500 ms for the default policy); measuring the busiest 100 ms
/// against the even rate over that window, not over the arrivals' own spread, keeps one late
/// client (a connect that failed and waited for a second attempt) from moving the figure.
pub fn intended_spread(policy: &ReconnectPolicy, arrivals: &[Duration]) -> (Duration, usize) {
    let b0 = policy.initial;
    let spread = b0.mul_f64(policy.jitter).max(WINDOW);
    // A window of slack either side: connecting takes time, and so does noticing the close.
    let (from, to) = (
        b0.mul_f64(1.0 - policy.jitter).saturating_sub(WINDOW),
        b0 + WINDOW,
    );
    let outside = arrivals.iter().filter(|a| **a < from || **a > to).count();
    (spread, outside)
}

/// The busiest 100 ms over the uniform rate: the same clients spread evenly over `reference`
/// (the default policy's spread, for both runs: a herd that arrives all at once would
/// otherwise look uniform over its own tiny spread).
pub fn peak_ratio(arrivals: &[Duration], reference: Duration) -> f64 {
    let uniform = arrivals.len() as f64 * WINDOW.as_secs_f64() / reference.as_secs_f64();
    peak(arrivals) as f64 / uniform
}

/// How many `arrivals` fall in each `width` (from 0) up to `until`.
pub fn buckets(arrivals: &[Duration], until: Duration, width: Duration) -> Vec<usize> {
    let n = (until.as_nanos() / width.as_nanos()) as usize + 1;
    let mut b = vec![0; n];
    for a in arrivals {
        let i = (a.as_nanos() / width.as_nanos()) as usize;
        if i < n {
            b[i] += 1;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23's complaint: one late client moved the herd figure from 1.2x to 4.19x. Against
    /// the policy's intended spread it moves nothing, and it is counted as outside.
    #[test]
    fn one_late_client_does_not_move_the_herd_figure() {
        let policy = ReconnectPolicy::default();
        // 2,000 arrivals spread evenly over the first reconnect's window, [0.5 s, 1 s).
        let even: Vec<Duration> = (0..2_000)
            .map(|i| Duration::from_millis(500) + Duration::from_micros(i * 250))
            .collect();
        let mut late = even.clone();
        late.push(Duration::from_secs(4));
        let (reference, outside) = intended_spread(&policy, &even);
        assert_eq!(reference, Duration::from_millis(500));
        assert_eq!(outside, 0);
        let (late_reference, late_outside) = intended_spread(&policy, &late);
        assert_eq!(late_reference, reference);
        assert_eq!(late_outside, 1);
        let ratio = peak_ratio(&even, reference);
        assert!((ratio - 1.0).abs() < 0.01, "{ratio}");
        assert!((peak_ratio(&late, late_reference) - ratio).abs() < 0.01);
        // What the old definition made of the same late client.
        assert!(peak_ratio(&late, spread(&late)) > 3.0 * ratio);
    }
}
