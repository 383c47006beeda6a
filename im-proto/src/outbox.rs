//! Q1–Q4: every accepted message is held, bounded, in order, until its fate is known.

use std::collections::VecDeque;
use std::time::Instant;

use crate::message::{OutgoingMessage, SendId};
use crate::transport::ConnId;

#[derive(Debug)]
pub(crate) struct Entry {
    pub id: SendId,
    pub msg: OutgoingMessage,
    pub key: String,
    pub size: usize,
    pub expires_at: Option<Instant>,
    /// The connection it was last transmitted on, while that connection lives.
    pub sent_on: Option<ConnId>,
    /// It went out at least once: a server may have it (reported with `Undelivered`).
    pub ever_sent: bool,
    /// Q3: when the ack for its transmission on `sent_on` is overdue (`None`: never).
    pub ack_deadline: Option<Instant>,
    /// Q3: retransmissions made after ack timeouts.
    pub ack_retries: u32,
}

/// FIFO by send id (Q2): retransmissions after a reconnect are older than anything queued since,
/// so one queue in id order is the delivery order.
#[derive(Debug)]
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    /// Entries with a TTL: when zero, expiry scans are skipped on the hot path.
    with_ttl: usize,
}

impl Outbox {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Outbox {
            entries: VecDeque::new(),
            bytes: 0,
            max_messages,
            max_bytes,
            with_ttl: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Q1: would one more message of `size` bytes fit?
    pub fn has_room(&self, size: usize) -> bool {
        self.entries.len() < self.max_messages && self.bytes + size <= self.max_bytes
    }

    /// Append; the caller checked room.
    pub fn push(&mut self, entry: Entry) {
        debug_assert!(self.entries.back().is_none_or(|e| e.id < entry.id));
        self.bytes += entry.size;
        self.with_ttl += usize::from(entry.expires_at.is_some());
        self.entries.push_back(entry);
    }

    /// Entries not yet transmitted on `conn`, in FIFO order.
    pub fn unsent_on(&mut self, conn: ConnId) -> impl Iterator<Item = &mut Entry> {
        self.entries
            .iter_mut()
            .filter(move |e| e.sent_on != Some(conn))
    }

    /// Whether anything went out on `conn` and awaits its ack.
    pub fn in_flight_on(&self, conn: ConnId) -> bool {
        self.entries.iter().any(|e| e.sent_on == Some(conn))
    }

    /// Take message `id` out (acked, sent without acks, or unencodable).
    pub fn take(&mut self, id: SendId) -> Option<Entry> {
        // Acks arrive roughly in order: the front is the usual hit.
        let pos = self.entries.iter().position(|e| e.id == id)?;
        self.remove_at(pos)
    }

    /// The connection is gone: what went out on it and was not acked must go out again.
    pub fn requeue(&mut self) {
        for e in &mut self.entries {
            e.sent_on = None;
            e.ack_deadline = None;
        }
    }

    /// Q3: the earliest instant an ack is overdue.
    pub fn next_ack_deadline(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.ack_deadline).min()
    }

    /// Q3: messages whose ack is overdue at `now`, in FIFO order.
    pub fn ack_overdue(&self, now: Instant) -> Vec<SendId> {
        self.entries
            .iter()
            .filter(|e| e.ack_deadline.is_some_and(|t| t <= now))
            .map(|e| e.id)
            .collect()
    }

    pub fn get_mut(&mut self, id: SendId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Q1 TTL: remove entries waiting for a connection whose time is up.
    pub fn expire(&mut self, now: Instant) -> Vec<Entry> {
        let mut gone = Vec::new();
        if self.with_ttl == 0 {
            return gone;
        }
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.sent_on.is_none() && e.expires_at.is_some_and(|t| t <= now) {
                gone.extend(self.remove_at(i));
            } else {
                i += 1;
            }
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        if self.with_ttl == 0 {
            return None;
        }
        self.entries
            .iter()
            .filter(|e| e.sent_on.is_none())
            .filter_map(|e| e.expires_at)
            .min()
    }

    /// Q4: everything, for the final report.
    pub fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.bytes = 0;
        self.with_ttl = 0;
        self.entries.drain(..)
    }

    fn remove_at(&mut self, pos: usize) -> Option<Entry> {
        let e = self.entries.remove(pos)?;
        self.bytes -= e.size;
        self.with_ttl -= usize::from(e.expires_at.is_some());
        Some(e)
    }
}
