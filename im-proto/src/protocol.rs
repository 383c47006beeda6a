//! The vendor plug-in: one trait the core calls, whatever the wire looks like.
//!
//! The core owns time, connections, retries, the outbox and the subscription set. A protocol
//! owns bytes: it turns frames into [`ProtocolEvent`]s and user intents into frames. It never
//! sees a socket or a clock it did not get from the core, so every vendor is testable in virtual
//! time with [`crate::sim`].
//!
//! The trait speaks one way: each `on_*` method is something that happened (the socket opened,
//! a frame arrived, a heartbeat or a message is due, a channel is wanted, the client closes),
//! and the protocol answers through its [`Context`] alone — frames to send
//! ([`Context::transmit`], [`Context::transmit_message`]) and what it learnt
//! ([`Context::emit`]). A return value only says whether it could do what was asked.

use std::time::Duration;

use web_time::Instant;

use crate::config::{HeartbeatMode, Limits};
pub use crate::error::{EncodeError, ProtocolError};
use crate::message::{Delivery, Message, OutgoingMessage, SendId};
use crate::output::Event;
use crate::queue::Outputs;
use crate::transport::{Endpoint, Frame};

/// What the core hands a protocol with every callback.
#[derive(Debug)]
pub struct Context<'a> {
    pub now: Instant,
    /// The heartbeat mode in force (MQTT puts its interval into CONNECT's keepalive).
    pub heartbeat: HeartbeatMode,
    /// The limits a decoder must enforce (JSON depth).
    pub limits: &'a Limits,
    events: &'a mut Vec<ProtocolEvent>,
    /// The core's queue of outputs, for a message that comes first in its input: nothing the
    /// core must act on precedes it, so it is queued for the user at once instead of passing
    /// through `events` (one move of a message fewer per chat frame).
    direct: Option<&'a mut Outputs>,
    /// What [`Context::transmit_message`] said of the message being sent.
    delivery: Option<Delivery>,
}

impl<'a> Context<'a> {
    pub fn new(
        now: Instant,
        heartbeat: HeartbeatMode,
        limits: &'a Limits,
        events: &'a mut Vec<ProtocolEvent>,
    ) -> Self {
        Context {
            now,
            heartbeat,
            limits,
            events,
            direct: None,
            delivery: None,
        }
    }

    /// A context whose messages go straight to the core's event queue while nothing precedes
    /// them (see `Context::direct`).
    pub(crate) fn with_direct(mut self, outputs: &'a mut Outputs) -> Self {
        self.direct = Some(outputs);
        self
    }

    /// Report what the input meant.
    pub fn emit(&mut self, event: ProtocolEvent) {
        match (event, self.direct.as_mut()) {
            (ProtocolEvent::Message(message), Some(outputs)) if self.events.is_empty() => {
                outputs.event(Event::Message(message));
            }
            (event, _) => self.events.push(event),
        }
    }

    /// Send a frame on the current connection (handshake steps, heartbeats, pongs, automatic
    /// acks, subscriptions, a goodbye).
    pub fn transmit(&mut self, frame: Frame) {
        self.events.push(ProtocolEvent::Transmit(frame));
    }

    /// Send the frame of the message [`Protocol::on_send`] was given, and say what the server
    /// will do about it. `AtLeastOnce`: the server will acknowledge it
    /// ([`ProtocolEvent::Acked`]) and the core holds the message until it does; `AtMostOnce`:
    /// no ack will come, the message is `Sent` once written.
    pub fn transmit_message(&mut self, frame: Frame, delivery: Delivery) {
        self.delivery = Some(delivery);
        self.transmit(frame);
    }

    /// Whether [`transmit_message`](Self::transmit_message) was called since the last take.
    pub(crate) fn take_delivery(&mut self) -> Option<Delivery> {
        self.delivery.take()
    }

    /// Run a request the protocol may refuse; if it does, nothing it reported meanwhile is kept
    /// (a refused request sends nothing, not half of itself).
    pub(crate) fn all_or_nothing<T, E>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let mark = self.events.len();
        let result = f(self);
        if result.is_err() {
            self.events.truncate(mark);
            self.delivery = None;
        }
        result
    }

    /// Hand every frame to send so far to `f`, in order, keeping the other events.
    pub(crate) fn take_transmits(&mut self, mut f: impl FnMut(Frame)) {
        if self
            .events
            .iter()
            .all(|e| matches!(e, ProtocolEvent::Transmit(_)))
        {
            for event in self.events.drain(..) {
                if let ProtocolEvent::Transmit(frame) = event {
                    f(frame);
                }
            }
            return;
        }
        let mut kept = Vec::new();
        for event in self.events.drain(..) {
            match event {
                ProtocolEvent::Transmit(frame) => f(frame),
                other => kept.push(other),
            }
        }
        *self.events = kept;
    }
}

/// What a protocol made of an input. The core acts on each, with no vendor-specific case.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum ProtocolEvent {
    /// Send this frame now, ahead of anything queued (handshake steps, pong, auto-ack).
    Transmit(Frame),
    /// The handshake is complete: subscriptions and the outbox may flow (S1, Q2).
    Ready,
    /// The server dictated the heartbeat for this connection (Socket.IO's open packet).
    Heartbeat(HeartbeatMode),
    /// The answer to our heartbeat arrived (H3: round-trip time is measured).
    Pong,
    /// The server pinged us (server-driven mode); any answer went out through `Transmit`.
    ServerPing,
    /// A message for the user.
    Message(Message),
    /// The server acknowledged a sent message (Q3).
    Acked(SendId),
    /// Q6: the server refused a sent message for good (asking again would not change its
    /// answer): it ends now, `Undelivered` with `reason`, instead of after every ack retry.
    Refused { id: SendId, reason: String },
    /// The server confirmed a subscription.
    Subscribed(String),
    /// The server refused a subscription.
    SubscribeRefused { channel: String, reason: String },
    /// The server ended the session for good (logged in elsewhere, banned): R4, no reconnect.
    Kicked { reason: String },
    /// The server wants this connection dropped and a reconnect, optionally not before `after`
    /// (R8).
    Reconnect {
        reason: String,
        after: Option<Duration>,
    },
    /// More endpoints of the same service, learnt from the server (R7).
    Endpoints(Vec<Endpoint>),
    /// An error that makes reconnecting pointless (bad credentials, unsupported version): the
    /// client closes for good.
    Fatal(ProtocolError),
    /// An error worth telling the user about; the connection carries on.
    Error(ProtocolError),
    /// During the handshake: the server restored this client's session, so what was sent to
    /// it while it was away follows (`Event::Connected { recovered: true }`).
    Resumed,
    /// Inbound resume failed: the server no longer had what was sent to this client while it
    /// was away (MQTT: no session kept), so messages may be missing. Reported, never silent.
    Gap { reason: String },
}

/// Per-send facts a protocol needs to encode a message.
#[derive(Clone, Copy, Debug)]
pub struct SendInfo<'a> {
    pub id: SendId,
    /// The idempotency key: the same on every retransmission of this message (Q3).
    pub key: &'a str,
    /// True when this is a retransmission after a reconnect (MQTT sets DUP).
    pub redelivery: bool,
}

/// A vendor's wire protocol.
///
/// The core calls these in a fixed order per connection: [`on_open`](Protocol::on_open) once the
/// transport is up, then [`on_frame`](Protocol::on_frame) for every inbound frame;
/// [`on_heartbeat`](Protocol::on_heartbeat), [`on_send`](Protocol::on_send),
/// [`on_subscribe`](Protocol::on_subscribe) and [`on_unsubscribe`](Protocol::on_unsubscribe)
/// only after the protocol emitted [`ProtocolEvent::Ready`]; [`on_close`](Protocol::on_close)
/// before a user close of a ready connection. Per-connection state must be reset in `on_open`:
/// a new connection is a new session. Everything a protocol sends or learns goes through the
/// [`Context`]; see the module docs.
pub trait Protocol: Send + 'static {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// WebSocket subprotocols the driver must offer (`mqtt` for MQTT).
    fn subprotocols(&self) -> &'static [&'static str] {
        &[]
    }

    /// The URL to open for a configured endpoint, when the vendor derives it (Socket.IO turns
    /// `http://host:port/ns` into its Engine.IO WebSocket URL); `None` opens it as given.
    fn resolve_endpoint(&mut self, _endpoint: &Endpoint) -> Option<Endpoint> {
        None
    }

    /// Refuse, at `send` time, a message this protocol can never carry (a binary body on a
    /// JSON-only wire), so the caller gets a `Result` instead of a later `Undelivered`.
    fn validate(&self, _msg: &OutgoingMessage) -> Result<(), EncodeError> {
        Ok(())
    }

    /// The transport opened: start the handshake (or emit `Ready` at once if there is none).
    fn on_open(&mut self, cx: &mut Context<'_>);

    /// Classify one inbound frame. An `Err` is reported to the user as an error event and the
    /// connection carries on; emit [`ProtocolEvent::Fatal`] to end it.
    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError>;

    /// A client-driven heartbeat is due (H1, or an H4 probe): transmit it.
    fn on_heartbeat(&mut self, cx: &mut Context<'_>);

    /// Send one message: its frame goes out with [`Context::transmit_message`], exactly once,
    /// saying whether the server will ack it. Each message decides for itself (its
    /// [`OutgoingMessage::delivery`], else the protocol's default): an ack the server will not
    /// send must never be waited for, and a message that asked for acks the server cannot give
    /// is refused with [`EncodeError::Unsupported`], not sent silently weaker. On `Err` nothing
    /// it reported is sent, and the message is handed back.
    fn on_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(), EncodeError>;

    /// The user wants `channel`: transmit the subscription, if the vendor has such a thing.
    fn on_subscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError>;

    /// The user no longer wants `channel`.
    fn on_unsubscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError>;

    /// The user closes a ready connection: transmit a goodbye, if the vendor has one (MQTT
    /// DISCONNECT).
    fn on_close(&mut self, _cx: &mut Context<'_>) {}
}

/// The refusal of a retained message by a vendor with nothing like MQTT's retain flag (every
/// shipped vendor but MQTT), named after `protocol`.
#[cfg(any(feature = "livechat", feature = "socketio", feature = "nats"))]
pub(crate) fn refuse_retain(
    protocol: &'static str,
    msg: &OutgoingMessage,
) -> Result<(), EncodeError> {
    if msg.retain {
        return Err(EncodeError::Unsupported {
            protocol,
            what: "retain a message",
        });
    }
    Ok(())
}

/// Refuse JSON nested deeper than `limit` before parsing it: a cheap scan of brackets outside
/// strings, so a hostile server cannot make a decoder recurse or allocate per level.
pub fn check_json_depth(text: &str, limit: usize) -> Result<(), ProtocolError> {
    // Depth cannot exceed the number of opening brackets; counting them is one branch-free
    // (vectorised) pass, and ordinary frames never need the precise scan below.
    // Counted per 255-byte chunk in a `u8`, which the compiler turns into SIMD compares (a
    // `filter().count()` stayed a byte-at-a-time loop; docs/PERFORMANCE.md).
    let openers: usize = text
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from((b == b'[') | (b == b'{'))) as usize
        })
        .sum();
    if openers <= limit {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ProtocolError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The deepest bracket nesting outside strings, the slow obvious way.
    fn depth(text: &str) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
        for c in text.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else if c == '[' || c == '{' {
                depth += 1;
                deepest = deepest.max(depth);
            } else if c == ']' || c == '}' {
                depth = depth.saturating_sub(1);
            }
        }
        deepest
    }

    proptest! {
        /// The opener count (vectorised, in chunks) never lets a too-deep frame through and
        /// never refuses one within the limit, across chunk boundaries.
        #[test]
        fn depth_check_matches_the_definition(
            text in "[\\[\\]{}\"\\\\ a]{0,700}",
            limit in 0usize..40,
        ) {
            let refused = check_json_depth(&text, limit).is_err();
            prop_assert_eq!(refused, depth(&text) > limit);
        }
    }

    #[test]
    fn depth_check_counts_openers_past_a_chunk() {
        let deep = "[".repeat(300);
        assert!(check_json_depth(&deep, 299).is_err());
        assert!(check_json_depth(&deep, 300).is_ok());
        let flat = "[],".repeat(300);
        assert!(check_json_depth(&flat, 1).is_ok());
    }
}
