//! Herd simulation (R1 in a fleet): 2,000 clients lose the server at t=0, it returns at t=10 s
//! (and, in the sweep, after outages from 0 to 30 s). Arrivals at the returned server must be
//! spread, not stampede; with jitter 0 they do stampede.
//!
//! Deterministic: virtual time, seeded jitter. The fleet shares one configuration and each
//! client has its own seed (`Client::with_seed`), as the drivers build clients opened alike.
//! Run with `--nocapture` to see the histogram.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use im_proto::sim::{Accept, Harness, Reply, ScriptedPeer};
use im_proto::{Client, Config, Event, Frame, HeartbeatMode, ReconnectPolicy};
use support::toy::{parse_client, ClientFrame, Toy};

const CLIENTS: usize = 2_000;
const OUTAGE: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_millis(100);

/// Arrival times (since the server went down) of each client's first connect after it returned.
fn simulate(policy: &ReconnectPolicy, fleet: u64) -> Vec<Duration> {
    simulate_outage(policy, fleet, OUTAGE)
}

/// [`simulate`] with the server down for `outage`.
fn simulate_outage(policy: &ReconnectPolicy, fleet: u64, outage: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let up_for = Duration::from_secs(60); // longer than stable_after: every link is healthy
    let down_at = start + up_for;
    let back_at = down_at + outage;
    let mut arrivals = Vec::with_capacity(CLIENTS);
    // One configuration for the fleet, as a driver shares it between clients opened alike; the
    // seed is each client's own.
    let config = Arc::new(
        Config::builder()
            .endpoint("ws://server/ws")
            .heartbeat(HeartbeatMode::Off)
            .reconnect(policy.clone())
            .build()
            .unwrap(),
    );
    for i in 0..CLIENTS {
        let peer = ScriptedPeer::new()
            .greeting(|_| vec![Frame::Text("WELCOME".into())])
            .respond(|_, f| match parse_client(f) {
                Some(ClientFrame::Ping) => vec![Reply::text("PONG")],
                _ => vec![],
            });
        let seed = fleet * CLIENTS as u64 + i as u64;
        let client =
            Client::with_seed(config.clone(), seed, Box::new(Toy::new(false)), start).unwrap();
        let mut sim = Harness::with_client(client, peer, start);
        sim.client.connect(start);
        sim.run_until(down_at);
        sim.peer.accept = Accept::Refuse("connection refused".into());
        sim.server_close(None);
        sim.run_until(back_at);
        sim.peer.accept = Accept::Yes;
        sim.run_until(back_at + Duration::from_secs(60));
        let connected_again = sim
            .timed_events()
            .filter(|(t, e)| *t >= back_at && matches!(e, Event::Connected { .. }))
            .count();
        assert_eq!(
            connected_again, 1,
            "client {i} did not come back exactly once"
        );
        let first = sim
            .peer
            .connects
            .iter()
            .map(|(t, _, _)| *t)
            .find(|t| *t >= back_at)
            .expect("a connect after the server returned");
        arrivals.push(first - down_at);
    }
    arrivals.sort();
    arrivals
}

/// The most arrivals in any window `[a, a + WINDOW)`.
fn peak(arrivals: &[Duration]) -> usize {
    let mut best = 0;
    let mut j = 0;
    for i in 0..arrivals.len() {
        while j < arrivals.len() && arrivals[j] < arrivals[i] + WINDOW {
            j += 1;
        }
        best = best.max(j - i);
    }
    best
}

/// Arrivals per window if they were spread evenly from the first to the last.
fn uniform(arrivals: &[Duration], clients: usize) -> f64 {
    let spread = *arrivals.last().unwrap() - arrivals[0];
    clients as f64 * WINDOW.as_secs_f64() / spread.as_secs_f64().max(WINDOW.as_secs_f64())
}

fn histogram(arrivals: &[Duration]) {
    let first = arrivals[0];
    let buckets =
        ((*arrivals.last().unwrap() - first).as_millis() / WINDOW.as_millis()) as usize + 1;
    let mut counts = vec![0usize; buckets];
    for a in arrivals {
        counts[((*a - first).as_millis() / WINDOW.as_millis()) as usize] += 1;
    }
    for (i, c) in counts.iter().enumerate() {
        let at = first + WINDOW * i as u32;
        println!(
            "  t={:>6.1}s {c:>4} {}",
            at.as_secs_f64(),
            "#".repeat(c.div_ceil(4))
        );
    }
}

#[test]
fn herd_reconnects_are_spread_and_jitter_zero_spikes() {
    let policy = ReconnectPolicy::default();

    // One fleet: what a server would actually see, Poisson noise included.
    let fleet = simulate(&policy, 0);
    let spread = *fleet.last().unwrap() - fleet[0];
    let fleet_ratio = peak(&fleet) as f64 / uniform(&fleet, CLIENTS);
    println!(
        "default policy {policy:?}\n{CLIENTS} clients, server back at t={OUTAGE:?}: \
         arrivals over {spread:.1?}, peak {} per {WINDOW:?}, uniform {:.1}, ratio {fleet_ratio:.2}",
        peak(&fleet),
        uniform(&fleet, CLIENTS)
    );
    histogram(&fleet);

    // The expected profile: 16 independent fleets pooled, counts divided by 16. This is the
    // policy's shape, with the Poisson noise of a single fleet averaged out.
    const FLEETS: u64 = 16;
    let mut pooled: Vec<Duration> = (0..FLEETS).flat_map(|f| simulate(&policy, f)).collect();
    pooled.sort();
    let expected_peak = peak(&pooled) as f64 / FLEETS as f64;
    let expected_uniform = uniform(&pooled, CLIENTS);
    let expected_ratio = expected_peak / expected_uniform;
    println!(
        "expected profile over {FLEETS} fleets: peak {expected_peak:.1} per {WINDOW:?}, \
         uniform {expected_uniform:.1}, ratio {expected_ratio:.2}"
    );

    // Same simulation, jitter 0.
    let rigid = policy.clone().jitter(0.0);
    let stampede = simulate(&rigid, 0);
    println!(
        "jitter 0: {} of {CLIENTS} arrive within one {WINDOW:?} window (at t={:.1?})",
        peak(&stampede),
        stampede[0]
    );

    assert!(
        expected_ratio <= 1.5,
        "expected peak is {expected_ratio:.2}x the uniform rate, above 1.5x"
    );
    assert!(
        fleet_ratio <= 1.5,
        "a single fleet peaks at {fleet_ratio:.2}x the uniform rate, above 1.5x"
    );
    assert_eq!(peak(&stampede), CLIENTS, "jitter 0 must stampede");
    assert!(peak(&stampede) >= 5 * peak(&fleet));
}

/// The expected peak ratio (16 fleets pooled) after an outage of each length.
fn ratio_after(policy: &ReconnectPolicy, outage: Duration) -> f64 {
    const FLEETS: u64 = 16;
    let mut pooled: Vec<Duration> = (0..FLEETS)
        .flat_map(|f| simulate_outage(policy, f, outage))
        .collect();
    pooled.sort();
    peak(&pooled) as f64 / FLEETS as f64 / uniform(&pooled, CLIENTS)
}

#[test]
fn herd_is_spread_after_outages_of_every_length() {
    let policy = ReconnectPolicy::default();
    let mut worst = 0.0f64;
    for secs in [0u64, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30] {
        let outage = Duration::from_secs(secs);
        let ratio = ratio_after(&policy, outage);
        let one = simulate_outage(&policy, 0, outage);
        let one_ratio = peak(&one) as f64 / uniform(&one, CLIENTS);
        println!(
            "herd after a {secs:>2} s outage: busiest {WINDOW:?} is {ratio:.2}x the uniform rate \
             (expected profile), {one_ratio:.2}x in one fleet of {CLIENTS}"
        );
        worst = worst.max(ratio);
    }
    assert!(worst <= 1.5, "a peak of {worst:.2}x the uniform rate");
}
