//! Every deadline the client keeps, in one table: armed with [`TimerTable::set`], stopped with
//! [`TimerTable::stop`], and fired by `Client::handle_timeout` in [`Timer::ORDER`].

use std::time::Duration;

use web_time::Instant;

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

/// When each [`Timer`] fires. Kept as nanoseconds from an instant of the client's own
/// (8 bytes a timer rather than an `Option<Instant>`'s 16: every idle connection keeps one);
/// a deadline beyond ±292 years of it is never (late) or at once (early).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerTable {
    base: Instant,
    at: [i64; Timer::ORDER.len()],
}

/// An unarmed timer.
const NEVER: i64 = i64::MAX;

impl TimerTable {
    /// No timer armed; `base` is any instant near the ones to come (the client's creation).
    pub fn new(base: Instant) -> Self {
        TimerTable {
            base,
            at: [NEVER; Timer::ORDER.len()],
        }
    }

    /// Arm `timer` for `at`; `None` (a deadline too far to represent: never) stops it.
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer as usize] = at.map_or(NEVER, |at| self.offset(at));
    }

    /// Arm `timer` for `now + d`: a duration too long to represent means never, not a panic.
    pub fn set_after(&mut self, timer: Timer, now: Instant, d: Duration) {
        self.set(timer, now.checked_add(d));
    }

    pub fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = NEVER;
    }

    pub fn stop_all(&mut self, timers: &[Timer]) {
        for &timer in timers {
            self.stop(timer);
        }
    }

    /// Stop every timer (the client closed).
    pub fn clear(&mut self) {
        self.at = [NEVER; Timer::ORDER.len()];
    }

    #[cfg(test)]
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.instant(self.at[timer as usize])
    }

    /// Whether `timer` is armed for `now` or earlier.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        let at = self.at[timer as usize];
        at != NEVER && at <= self.offset(now)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.instant(self.at.iter().copied().min().unwrap_or(NEVER))
    }

    /// `at` as nanoseconds from `base`, saturated: beyond the range late is never, early is
    /// the earliest representable (long overdue either way).
    fn offset(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.base) {
            Some(later) => i64::try_from(later.as_nanos()).unwrap_or(NEVER),
            None => {
                let earlier = self.base.saturating_duration_since(at).as_nanos();
                i64::try_from(earlier).map_or(i64::MIN, |n| -n)
            }
        }
    }

    fn instant(&self, offset: i64) -> Option<Instant> {
        match offset {
            NEVER => None,
            n if n >= 0 => self.base.checked_add(Duration::from_nanos(n as u64)),
            n => self
                .base
                .checked_sub(Duration::from_nanos(n.unsigned_abs())),
        }
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
        let mut t = TimerTable::new(now);
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

    #[test]
    fn deadlines_come_back_exactly_on_either_side_of_the_base() {
        let base = Instant::now() + Duration::from_secs(3600);
        let mut t = TimerTable::new(base);
        for at in [
            base,
            base + Duration::from_nanos(1),
            base - Duration::from_nanos(1),
            base + Duration::from_secs(86_400 * 365 * 200) + Duration::from_nanos(7),
            base - Duration::from_secs(1800) - Duration::from_nanos(3),
        ] {
            t.set(Timer::DeadLink, Some(at));
            assert_eq!(t.get(Timer::DeadLink), Some(at));
            assert!(t.is_due(Timer::DeadLink, at));
            assert!(!t.is_due(Timer::DeadLink, at - Duration::from_nanos(1)));
        }
        // Beyond ±292 years: never, or at once.
        if let Some(far) = base.checked_add(Duration::from_secs(86_400 * 365 * 300)) {
            t.set(Timer::DeadLink, Some(far));
            assert_eq!(t.get(Timer::DeadLink), None);
        }
    }
}
