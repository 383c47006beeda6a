//! Waiting for events in tests: always for an event, always with a deadline that fails the test.

use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use im_driver::Events;
use im_proto::{Cause, Event};

use crate::proxy::{FaultProxy, Mode};

/// How long anything that should happen "soon" may take on a loaded 2-core machine.
pub const SOON: Duration = Duration::from_secs(10);

/// Read events until one matches `pred`; returns everything read, the match last. Panics with
/// what was seen if none matches within [`SOON`]. Works under every runtime (async-io's timer
/// runs on its own thread).
pub async fn until(
    events: &mut Events,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + SOON;
    loop {
        let next = match select(Box::pin(events.recv()), async_io::Timer::at(deadline)).await {
            Either::Left((event, _)) => event,
            Either::Right(_) => panic!("no {what} within {SOON:?}; saw {seen:#?}"),
        };
        match next {
            Some(event) => {
                let hit = pred(&event);
                seen.push(event);
                if hit {
                    return seen;
                }
            }
            None => panic!("event stream ended while waiting for {what}; saw {seen:#?}"),
        }
    }
}

/// H2 under test: make `proxy` a black hole (the link goes half-open: no error, no close) and
/// read `events` until the client declares the link dead. Returns how long that took.
pub async fn blackhole_until_dead_link(proxy: &FaultProxy, events: &mut Events) -> Duration {
    let cut = Instant::now();
    proxy.set_mode(Mode::Blackhole);
    until(events, "dead link", |e| {
        matches!(
            e,
            Event::Disconnected {
                cause: Cause::DeadLink
            }
        )
    })
    .await;
    cut.elapsed()
}

/// Take the client behind `proxy` offline: its connection reset, new ones black-holed, until
/// it reports the loss. `proxy.set_mode(Mode::Pass)` brings it back.
pub async fn cut_off(proxy: &FaultProxy, events: &mut Events) {
    proxy.set_mode(Mode::Blackhole);
    proxy.reset_all();
    until(events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
}

/// S1 across a server restart: with a subscription acked, `kill` the server, see the loss,
/// `restart` it, and see the subscription restored on the new connection.
pub async fn resubscribed_after_restart<S>(
    events: &mut Events,
    server: &mut S,
    kill: fn(&mut S),
    restart: fn(&mut S),
) {
    until(events, "subscription acked", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
    kill(server);
    until(events, "Disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    restart(server);
    until(events, "resubscribed after the restart", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
}

/// This process's resident set size in bytes (Linux; 0 where /proc is missing).
pub fn rss_bytes() -> u64 {
    rss_bytes_of("self")
}

/// Resident memory of process `pid` (`self` for this one), from /proc; 0 if it cannot be read.
pub fn rss_bytes_of(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// `f`, or `None` if it takes longer than `limit` (async-io's timer: any runtime).
pub async fn timeout<F: std::future::Future>(limit: Duration, f: F) -> Option<F::Output> {
    match select(Box::pin(f), async_io::Timer::after(limit)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// `f` must finish within [`SOON`].
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    timeout(SOON, f)
        .await
        .unwrap_or_else(|| panic!("not done within {SOON:?}"))
}

/// Wait until `condition` holds, checking every 10 ms, for a state that lives on the other
/// side of a socket (what a server has received). Panics with `what` after [`SOON`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "not true within {SOON:?}: {what}"
        );
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

/// Read `events` until `n` sends were acked, and return `n`; an `Undelivered` fails the test.
/// Spawn it beside a sender: a client whose events nobody reads stops reading its socket
/// (backpressure), and its acks with it.
pub async fn all_acked(mut events: Events, n: u64) -> u64 {
    let mut acked = 0;
    while acked < n {
        match events.recv().await.expect("the sender's events") {
            Event::Acked { .. } => acked += 1,
            Event::Undelivered { id, reason, .. } => panic!("message {id} undelivered: {reason:?}"),
            _ => {}
        }
    }
    acked
}

/// CPU time this process has used (user + system), from /proc.
pub fn cpu_time() -> Duration {
    cpu_time_of("self")
}

/// CPU time process `pid` (`self` for this one) has used (user + system), from /proc.
pub fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) are space-separated; utime and
    // stime are the 14th and 15th fields, in clock ticks (100 per second on Linux).
    let rest = stat.get(end + 2..).unwrap_or_default();
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}
