//! Q1–Q4: every accepted message is held, bounded, in order, until its fate is known, and its
//! fate is told: `Sent`, `Acked` (by the client, on the protocol's word) or `Undelivered`.

use std::collections::VecDeque;
use std::time::Duration;

use web_time::Instant;

use crate::error::EncodeError;
use crate::message::{Delivery, OutgoingMessage, SendId};
use crate::output::{Event, Output, Undelivered};
use crate::protocol::{Context, Protocol, SendInfo};
use crate::queue::Outputs;
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
    /// Its last transmission was not its first: an earlier one, unanswered, may have arrived
    /// (Q6: what a refusal, which answers the last, leaves open).
    pub resent: bool,
    /// Q3: when the ack for its transmission on `sent_on` is overdue (`None`: never).
    pub ack_deadline: Option<Instant>,
    /// Q3: retransmissions made after ack timeouts.
    pub ack_retries: u32,
}

/// A protocol that accepted a message without transmitting it broke its contract: the message
/// is handed back rather than held for an ack that cannot come.
fn no_frame() -> EncodeError {
    EncodeError::Other("the protocol accepted the message but transmitted no frame for it".into())
}

impl Entry {
    /// The report that hands this message back.
    fn undelivered(self, reason: Undelivered) -> Event {
        let maybe_delivered = match reason {
            Undelivered::Refused { .. } => self.resent,
            _ => self.ever_sent,
        };
        Event::Undelivered {
            id: self.id,
            message: Box::new(self.msg),
            reason,
            maybe_delivered,
        }
    }
}

/// The idempotency key of a message sent without one: `tag` as 16 hex digits, a dash, `id`.
/// Digits written directly: `format!("{:016x}")` was a measurable share of every send
/// (docs/PERFORMANCE.md).
pub(crate) fn generated_key(tag: u64, id: SendId) -> String {
    use std::fmt::Write;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = Vec::with_capacity(16 + 1 + 20);
    key.extend(
        (0..16)
            .rev()
            .map(|nibble| HEX[(tag >> (nibble * 4)) as usize & 0xf]),
    );
    // Hex digits are ASCII: the conversion cannot fail.
    let mut key = String::from_utf8(key).unwrap_or_default();
    // Writing into a `String` cannot fail.
    let _ = write!(key, "-{}", id.0);
    key
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

    /// Q7: the driver reads again: no ack could be read while it did not, so every ack
    /// awaited gets at least a full `ack_timeout` from `now`.
    pub fn renew_ack_deadlines(&mut self, now: Instant, ack_timeout: Duration) {
        let fresh = now.checked_add(ack_timeout);
        for e in &mut self.entries {
            // A window too long to represent is no deadline at all, as at transmission.
            e.ack_deadline = e.ack_deadline.and_then(|d| fresh.map(|f| d.max(f)));
        }
    }

    /// Q3: messages whose ack is overdue at `now`, in FIFO order.
    fn ack_overdue(&self, now: Instant) -> Vec<SendId> {
        self.entries
            .iter()
            .filter(|e| e.ack_deadline.is_some_and(|t| t <= now))
            .map(|e| e.id)
            .collect()
    }

    fn get_mut(&mut self, id: SendId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Q1 TTL: remove entries waiting for a connection whose time is up.
    fn expire(&mut self, now: Instant) -> Vec<Entry> {
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

    /// Q2, Q3: transmit every held message not yet sent on `conn`, in FIFO order. A message
    /// no ack will answer is `Sent` and gone; one the server will ack stays, due by
    /// `now + ack_timeout`; one the protocol cannot encode is handed back.
    /// Anything else the protocol reports while sending stays in `cx` for the caller.
    pub fn flush(
        &mut self,
        conn: ConnId,
        ack_timeout: Duration,
        protocol: &mut dyn Protocol,
        cx: &mut Context<'_>,
        out: &mut Outputs,
    ) {
        let ack_deadline = cx.now.checked_add(ack_timeout);
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for entry in self.unsent_on(conn) {
            let info = SendInfo {
                id: entry.id,
                key: &entry.key,
                redelivery: entry.ever_sent,
            };
            let sent = cx.all_or_nothing(|cx| {
                protocol.on_send(cx, &entry.msg, info)?;
                cx.take_delivery().ok_or_else(no_frame)
            });
            match sent {
                Ok(delivery) => {
                    cx.take_transmits(|frame| out.push(Output::Transmit { conn, frame }));
                    entry.sent_on = Some(conn);
                    entry.resent = entry.ever_sent;
                    entry.ever_sent = true;
                    match delivery {
                        Delivery::AtLeastOnce => entry.ack_deadline = ack_deadline,
                        _ => {
                            out.event(Event::Sent { id: entry.id });
                            done.push(entry.id);
                        }
                    }
                }
                Err(error) => failed.push((entry.id, error)),
            }
        }
        for id in done {
            self.take(id);
        }
        for (id, error) in failed {
            if let Some(entry) = self.take(id) {
                out.event(entry.undelivered(Undelivered::Encode(error)));
            }
        }
    }

    /// Q3: messages whose ack is overdue at `now` go back in the queue (to be flushed again with
    /// the same key) while `retries` remain, and are handed back after that
    /// (`Undelivered { AckTimeout }`), so a server that never acks cannot hold the outbox
    /// hostage. One whose TTL is over is handed back as expired.
    pub fn retry_overdue(&mut self, now: Instant, retries: u32, out: &mut Outputs) {
        for id in self.ack_overdue(now) {
            let Some(entry) = self.get_mut(id) else {
                continue;
            };
            let reason = if entry.expires_at.is_some_and(|t| t <= now) {
                // Q1: its time is up; it went out, so the server may have it.
                Undelivered::Expired
            } else if entry.ack_retries < retries {
                entry.ack_retries += 1;
                entry.sent_on = None;
                entry.ack_deadline = None;
                continue;
            } else {
                Undelivered::AckTimeout
            };
            if let Some(entry) = self.take(id) {
                out.event(entry.undelivered(reason));
            }
        }
    }

    /// Q6: the server refused `id` for good: handed back now. False when it is no longer held
    /// (acked, expired), which changes nothing.
    pub fn refuse(&mut self, id: SendId, reason: String, out: &mut Outputs) -> bool {
        let Some(entry) = self.take(id) else {
            return false;
        };
        out.event(entry.undelivered(Undelivered::Refused { reason }));
        true
    }

    /// Q1 TTL: hand back the entries waiting for a connection whose time is up.
    pub fn expire_into(&mut self, now: Instant, out: &mut Outputs) {
        for entry in self.expire(now) {
            out.event(entry.undelivered(Undelivered::Expired));
        }
    }

    /// Q4: the client closed: everything still held is handed back.
    pub fn close(&mut self, out: &mut Outputs) {
        self.bytes = 0;
        self.with_ttl = 0;
        for entry in self.entries.drain(..) {
            out.event(entry.undelivered(Undelivered::Closed));
        }
    }

    fn remove_at(&mut self, pos: usize) -> Option<Entry> {
        let e = self.entries.remove(pos)?;
        self.bytes -= e.size;
        self.with_ttl -= usize::from(e.expires_at.is_some());
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_the_tag_in_hex_then_the_send_id() {
        for (tag, id) in [
            (0, 0),
            (0xabc, 7),
            (u64::MAX, u64::MAX),
            (0x0123_4567_89ab_cdef, 42),
        ] {
            assert_eq!(generated_key(tag, SendId(id)), format!("{tag:016x}-{id}"));
        }
    }
}
