//! The liveness of a `Ready` connection (H1–H4): when the next heartbeat goes out, when the
//! link counts as dead, and the round-trip times of the answered heartbeats.

use std::collections::VecDeque;
use std::time::Duration;

use web_time::Instant;

use super::timer::{Timer, TimerTable};
use crate::config::HeartbeatMode;

/// Liveness bookkeeping of a `Ready` connection. Its deadlines live in the client's timer
/// table: [`Timer::Heartbeat`] (H1) and [`Timer::DeadLink`] (H2, or an H4 probe's deadline).
#[derive(Debug)]
pub(crate) struct Liveness {
    pub mode: HeartbeatMode,
    /// H4: a probe is out and `DeadLink` is its deadline; another probe would only move it.
    probing: bool,
    /// The driver stopped reading (its user reads events too slowly): silence proves nothing,
    /// so H2 is suspended until reading resumes.
    paused: bool,
    /// H3: send times of unanswered heartbeats, oldest first. Pongs carry no id, and servers
    /// answer in order, so each pong answers the oldest. Bounded by [`MAX_UNANSWERED`].
    unanswered: VecDeque<Instant>,
    /// Heartbeats older than those in `unanswered`, forgotten to keep it bounded: the next
    /// pongs answer them, and their round-trip time is not known (reported as `None`, never as
    /// a newer heartbeat's).
    forgotten: u32,
    /// H3: the instant inbound traffic last re-armed H2. The frames a driver feeds in one batch
    /// share their `now`, and each would arm the same deadline again: only the first does.
    /// Forgotten whenever something else moves `DeadLink` (a probe, a pause).
    watched_at: Option<Instant>,
}

/// Heartbeats remembered for RTT. More can be unanswered on a slow but live link (answers
/// lagging by more intervals than this, within the timeout): the oldest are then forgotten and
/// only counted, so that each answer is still matched to its own heartbeat.
const MAX_UNANSWERED: usize = 8;

/// What an H4 probe sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A heartbeat (the protocol's, or a WebSocket ping in that mode).
    Heartbeat,
    /// Nothing: the server drives the heartbeat and gets one fresh window to show it is there.
    Wait,
}

impl Liveness {
    /// A link that became `Ready` (or changed its heartbeat mode) at `now`: H1 and H2 start
    /// counting from here.
    pub fn start(
        now: Instant,
        mode: HeartbeatMode,
        reading: bool,
        timers: &mut TimerTable,
    ) -> Liveness {
        match mode.send_every() {
            Some(interval) => timers.set_after(Timer::Heartbeat, now, interval),
            None => timers.stop(Timer::Heartbeat),
        }
        let link = Liveness {
            mode,
            probing: false,
            paused: !reading,
            unanswered: VecDeque::new(),
            forgotten: 0,
            watched_at: None,
        };
        link.watch_from(now, timers);
        link
    }

    /// H2: the link is dead if nothing arrives within the window from `now` (not while paused).
    fn watch_from(&self, now: Instant, timers: &mut TimerTable) {
        match self.mode.dead_after() {
            Some(window) if !self.paused => timers.set_after(Timer::DeadLink, now, window),
            _ => timers.stop(Timer::DeadLink),
        }
    }

    pub fn is_probing(&self) -> bool {
        self.probing
    }

    /// H3: any inbound frame proves liveness; an H4 probe is answered by it.
    pub fn saw_inbound(&mut self, now: Instant, timers: &mut TimerTable) {
        if self.watched_at == Some(now) {
            // The same deadline is armed already (and no probe is out: it forgets this).
            return;
        }
        self.probing = false;
        self.watch_from(now, timers);
        self.watched_at = Some(now);
    }

    /// The driver stopped or resumed reading. On resume the link gets a fresh window.
    pub fn set_reading(&mut self, now: Instant, reading: bool, timers: &mut TimerTable) {
        let resumed = self.paused && reading;
        self.paused = !reading;
        self.watched_at = None;
        if resumed {
            self.probing = false;
            self.watch_from(now, timers);
        } else if self.paused {
            timers.stop(Timer::DeadLink);
        }
    }

    /// H1: a heartbeat goes out now; the next one is due an interval later, answered or not.
    pub fn heartbeat_sent(&mut self, now: Instant, timers: &mut TimerTable) {
        match self.mode.send_every() {
            Some(interval) => timers.set_after(Timer::Heartbeat, now, interval),
            None => timers.stop(Timer::Heartbeat),
        }
        self.remember(now);
    }

    /// H4: don't trust stale state; ask the link whether it is alive. `None` when a probe is
    /// already out (H2: a repeated hint cannot postpone its deadline) or the mode has none.
    pub fn probe(&mut self, now: Instant, timers: &mut TimerTable) -> Option<Probe> {
        if self.probing {
            return None;
        }
        let (wait, probe) = match self.mode {
            HeartbeatMode::ClientDriven { timeout, .. }
            | HeartbeatMode::WebSocketPing { timeout, .. } => (timeout, Probe::Heartbeat),
            HeartbeatMode::ServerDriven { interval, timeout } => {
                (interval.saturating_add(timeout), Probe::Wait)
            }
            HeartbeatMode::Off => return None,
        };
        self.probing = true;
        self.watched_at = None;
        if !self.paused {
            timers.set_after(Timer::DeadLink, now, wait);
        }
        if probe == Probe::Heartbeat {
            self.remember(now);
        }
        Some(probe)
    }

    /// H3: the answer to the oldest unanswered heartbeat; its round-trip time, when known.
    pub fn pong(&mut self, now: Instant) -> Option<Duration> {
        if self.forgotten > 0 {
            self.forgotten -= 1;
            return None;
        }
        self.unanswered
            .pop_front()
            .map(|sent| now.saturating_duration_since(sent))
    }

    fn remember(&mut self, now: Instant) {
        if self.unanswered.len() == MAX_UNANSWERED {
            self.unanswered.pop_front();
            self.forgotten = self.forgotten.saturating_add(1);
        }
        self.unanswered.push_back(now);
    }
}
