//! Every deadline the client keeps, in one table: armed with [`TimerTable::set`], stopped with
//! [`TimerTable::stop`], and fired by `Client::handle_timeout` in [`Timer::ORDER`].

use std::time::{Duration, Instant};

/// One kind of deadline. A client has at most one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Q1: the earliest TTL among messages waiting for a connection.
    Expiry,
    /// Q3: the earliest ack that is overdue.
    AckTimeout,
    /// A vendor switch stops waiting for the old vendor's acks.
    Switch,
    /// The WebSocket did not open in time.
    Connect,
    /// The protocol's handshake did not finish in time.
    Handshake,
    /// R2: the connection has been `Ready` long enough to count as healthy.
    Stable,
    /// H2: no inbound traffic within the window (or no answer to an H4 probe): the link is dead.
    DeadLink,
    /// H1: the next client-driven heartbeat.
    Heartbeat,
    /// R1: the backoff wait is over.
    Backoff,
}

impl Timer {
    /// The order timers due at the same instant fire in: the outbox first (what expired is
    /// not sent on a new connection), then the switch and the phase's own timers; `Stable`
    /// before `DeadLink` (a link that proved stable and then died is a healthy loss, R2), and
    /// `DeadLink` before `Heartbeat` (nothing is sent on a dead link).
    pub const ORDER: [Timer; 9] = [
        Timer::Expiry,
        Timer::AckTimeout,
        Timer::Switch,
        Timer::Connect,
        Timer::Handshake,
        Timer::Stable,
        Timer::DeadLink,
        Timer::Heartbeat,
        Timer::Backoff,
    ];

    /// The timers of a connection: stopped whenever the client leaves a phase.
    pub const PHASE: [Timer; 6] = [
        Timer::Connect,
        Timer::Handshake,
        Timer::Stable,
        Timer::DeadLink,
        Timer::Heartbeat,
        Timer::Backoff,
    ];
}

/// When each [`Timer`] fires; `None`: not armed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::ORDER.len()],
}

impl TimerTable {
    /// Arm `timer` for `at`; `None` (a deadline too far to represent: never) stops it.
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer as usize] = at;
    }

    /// Arm `timer` for `now + d`: a duration too long to represent means never, not a panic.
    pub fn set_after(&mut self, timer: Timer, now: Instant, d: Duration) {
        self.set(timer, now.checked_add(d));
    }

    pub fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    pub fn stop_all(&mut self, timers: &[Timer]) {
        for &timer in timers {
            self.stop(timer);
        }
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }

    /// Whether `timer` is armed for `now` or earlier.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_slots_cover_every_timer_once() {
        for (i, timer) in Timer::ORDER.iter().enumerate() {
            assert_eq!(*timer as usize, i, "ORDER follows the declaration");
        }
    }

    #[test]
    fn the_earliest_armed_deadline_is_next() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set_after(Timer::Backoff, now, Duration::from_secs(3));
        t.set_after(Timer::Expiry, now, Duration::from_secs(1));
        t.set_after(Timer::Heartbeat, now, Duration::MAX);
        assert_eq!(t.next(), Some(now + Duration::from_secs(1)));
        assert_eq!(t.get(Timer::Heartbeat), None, "Duration::MAX means never");
        t.stop(Timer::Expiry);
        assert_eq!(t.next(), Some(now + Duration::from_secs(3)));
        assert!(t.is_due(Timer::Backoff, now + Duration::from_secs(3)));
        t.stop_all(&Timer::PHASE);
        assert_eq!(t.next(), None);
    }
}
