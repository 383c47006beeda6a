//! MQTT 3.1.1 over WebSocket (subprotocol `mqtt`): CONNECT/CONNACK, SUBSCRIBE/SUBACK,
//! UNSUBSCRIBE, PUBLISH at QoS 1 with PUBACK, client-driven PINGREQ/PINGRESP, DISCONNECT.
//!
//! Channels are topics. Outgoing messages are published at QoS 1 by default (acked by packet id,
//! Q3; after a reconnect or an ack timeout unacked ones go out again with the DUP flag), or at
//! QoS 0 ([`Mqtt::qos`] per client, [`Delivery`] per message: `Sent` once written). QoS 2 is not
//! supported. MQTT 3.1.1 has no place for the idempotency key, so a broker cannot deduplicate:
//! QoS 1 is at-least-once. The retain flag is [`OutgoingMessage::retain`]. Incoming QoS 1
//! publishes are acknowledged automatically, once the message is handed to the client.
//!
//! The session is clean on every connect by default, and the core resubscribes (S1). With
//! [`Mqtt::persistent_session`] (`clean_session = false` under a stable client id) the broker
//! keeps the subscriptions and queues QoS 1 messages for the client while it is away, and
//! delivers them when it is back; a broker that kept no session (restarted without
//! persistence, or the session expired) is reported as `ReportedError::Gap`. Duplicates are
//! not filtered by packet id: MQTT 3.1.1 §4.3.2 makes a PUBLISH that reuses an acknowledged
//! id a new publication, whatever its DUP flag, so QoS 1 stays at-least-once inbound too.

/// The packet codec, public for the fuzz targets and interop tests; not a stable API.
#[doc(hidden)]
pub mod codec;

use std::collections::HashMap;
use std::fmt;
use web_time::Instant;

use bytes::{Buf, BytesMut};

#[doc(hidden)]
pub use codec::{CodecError, Packet, Publish};

use crate::message::{Body, Delivery, Message, OutgoingMessage, SendId};
use crate::protocol::{Context, EncodeError, Protocol, ProtocolError, ProtocolEvent, SendInfo};
use crate::transport::Frame;

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
const SERVER_UNAVAILABLE: u8 = 3;
const BAD_CREDENTIALS: u8 = 4;
const NOT_AUTHORIZED: u8 = 5;

/// An MQTT 3.1.1 client session.
pub struct Mqtt {
    client_id: String,
    username: Option<String>,
    password: Option<Vec<u8>>,
    /// QoS of a message that does not ask for a delivery: 1 (at-least-once) or 0.
    qos: u8,
    /// Bytes of a packet split across WebSocket frames; bounded by the frame limit.
    partial: BytesMut,
    next_packet_id: u16,
    /// Packet id → send, for PUBACK (Q3). Bounded by the outbox; reset per connection.
    inflight: HashMap<u16, SendId>,
    /// Packet id → topic, for SUBACK.
    subscribing: HashMap<u16, String>,
    /// `clean_session = false`: the broker keeps the session between connections.
    persistent: bool,
    /// A session was established once (a CONNACK accepted): a later CONNACK without
    /// `session_present` means the broker lost it.
    had_session: bool,
}

impl Mqtt {
    pub fn new(client_id: impl Into<String>) -> Self {
        Mqtt {
            client_id: client_id.into(),
            username: None,
            password: None,
            qos: 1,
            partial: BytesMut::new(),
            next_packet_id: 0,
            inflight: HashMap::new(),
            subscribing: HashMap::new(),
            persistent: false,
            had_session: false,
        }
    }

    /// Ask the broker to keep this client's session between connections (`clean_session =
    /// false`): its subscriptions, and the QoS 1 messages that arrive while it is away, which
    /// the broker delivers when it reconnects. The client id must then be stable and unique
    /// (the broker keys the session on it). A reconnect that finds no session is reported as
    /// `ReportedError::Gap`.
    pub fn persistent_session(mut self) -> Self {
        self.persistent = true;
        self
    }

    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<Vec<u8>>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The QoS of messages that do not ask for a delivery of their own: 0 (at-most-once, `Sent`
    /// once written) or 1 (at-least-once, `Acked` on PUBACK; the default). Anything above 1 is
    /// taken as 1: QoS 2 is not supported.
    pub fn qos(mut self, qos: u8) -> Self {
        self.qos = qos.min(1);
        self
    }

    /// A free packet id, 1..=65535, skipping ids still in use; a typed error once all 65,535
    /// are held (a slow broker and a large outbox), never a search without end.
    fn packet_id(&mut self) -> Result<u16, EncodeError> {
        const EXHAUSTED: EncodeError = EncodeError::Exhausted {
            protocol: "mqtt",
            what: "packet ids (65,535 awaiting PUBACK or SUBACK)",
        };
        // Every id held: refuse at once rather than visit all 65,535 to find none.
        if self.inflight.len() + self.subscribing.len() >= usize::from(u16::MAX) {
            return Err(EXHAUSTED);
        }
        for _ in 0..u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
            let id = self.next_packet_id;
            if !self.inflight.contains_key(&id) && !self.subscribing.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(EXHAUSTED)
    }

    fn frame(packet: &Packet) -> Frame {
        let mut out = Vec::new();
        packet.encode(&mut out);
        Frame::Binary(out.into())
    }

    fn on_packet(&mut self, cx: &mut Context<'_>, packet: Packet) {
        match packet {
            Packet::ConnAck {
                code: 0,
                session_present,
            } => {
                if self.persistent && session_present {
                    cx.emit(ProtocolEvent::Resumed);
                }
                if self.persistent && self.had_session && !session_present {
                    cx.emit(ProtocolEvent::Gap {
                        reason: "the MQTT broker kept no session for this client id (restarted \
                                 without persistence, or the session expired)"
                            .into(),
                    });
                }
                self.had_session = true;
                cx.emit(ProtocolEvent::Ready)
            }
            Packet::ConnAck {
                code: SERVER_UNAVAILABLE,
                ..
            } => cx.emit(ProtocolEvent::Reconnect {
                reason: "broker unavailable".into(),
                after: None,
            }),
            Packet::ConnAck { code, .. } => {
                let why = match code {
                    BAD_CREDENTIALS => "bad user name or password",
                    NOT_AUTHORIZED => "not authorized",
                    1 => "protocol version refused",
                    2 => "client identifier rejected",
                    _ => "connection refused",
                };
                cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(format!(
                    "CONNACK {code}: {why}"
                ))));
            }
            Packet::Publish {
                qos,
                topic,
                packet_id,
                payload,
                ..
            } => {
                // Bytes, as MQTT carries them: whether they are text is the reader's question
                // (`Body::as_text`), not a check on every message.
                let body = Body::Binary(payload);
                cx.emit(ProtocolEvent::Message(Message::new(topic, body)));
                // After the message: a connection lost between the two leaves the broker
                // without a PUBACK, and it delivers again, rather than the other way round.
                if let (1, Some(id)) = (qos, packet_id) {
                    cx.transmit(Self::frame(&Packet::PubAck { packet_id: id }));
                }
            }
            Packet::PubAck { packet_id } => {
                if let Some(id) = self.inflight.remove(&packet_id) {
                    cx.emit(ProtocolEvent::Acked(id));
                }
            }
            Packet::SubAck { packet_id, codes } => {
                if let Some(topic) = self.subscribing.remove(&packet_id) {
                    if codes.first().is_some_and(|c| *c == 0x80) {
                        cx.emit(ProtocolEvent::SubscribeRefused {
                            channel: topic,
                            reason: "SUBACK 0x80".into(),
                        });
                    } else {
                        cx.emit(ProtocolEvent::Subscribed(topic));
                    }
                }
            }
            Packet::PingResp => cx.emit(ProtocolEvent::Pong),
            Packet::UnsubAck { .. } => {}
            other => cx.emit(ProtocolEvent::Error(ProtocolError::Violation(format!(
                "unexpected {other:?} from the broker"
            )))),
        }
    }
}

impl fmt::Debug for Mqtt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mqtt")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A topic we may publish to: not empty, no wildcards, no NUL, fits a length prefix.
fn check_topic(topic: &str, wildcards: bool) -> Result<(), EncodeError> {
    let bad = topic.is_empty()
        || topic.len() > usize::from(u16::MAX)
        || topic.contains('\0')
        || (!wildcards && (topic.contains('+') || topic.contains('#')));
    if bad {
        Err(EncodeError::InvalidChannel(topic.to_owned()))
    } else {
        Ok(())
    }
}

impl Protocol for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn subprotocols(&self) -> &'static [&'static str] {
        &["mqtt"]
    }

    fn on_open(&mut self, cx: &mut Context<'_>) {
        self.partial.clear();
        self.inflight.clear();
        self.subscribing.clear();
        // The broker drops us after 1.5 × keep-alive without traffic; we ping every interval.
        let keep_alive = cx
            .heartbeat
            .send_every()
            .map_or(0, |i| i.as_secs().clamp(1, u64::from(u16::MAX)) as u16);
        cx.transmit(Self::frame(&Packet::Connect {
            client_id: self.client_id.clone(),
            keep_alive,
            clean_session: !self.persistent,
            username: self.username.clone(),
            password: self.password.clone(),
        }));
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let bytes = match frame {
            Frame::Binary(b) => b,
            Frame::Text(_) => return Err(ProtocolError::UnexpectedFrame("text")),
            _ => return Ok(()),
        };
        let limit = cx.limits.max_frame_bytes;
        // Packets are decoded from the frame itself, sharing it, unless an earlier frame left
        // the start of one behind.
        let mut buf = if self.partial.is_empty() {
            bytes
        } else {
            self.partial.extend_from_slice(&bytes);
            self.partial.split().freeze()
        };
        // Most frames hold whole packets: nothing is left to look at after the last.
        while !buf.is_empty() {
            match Packet::decode_shared(&buf, limit) {
                Ok(Some((packet, n))) => {
                    buf.advance(n);
                    self.on_packet(cx, packet);
                }
                Ok(None) => break,
                Err(e) => {
                    // A byte stream cannot be resynchronised after garbage: MQTT says close.
                    self.partial.clear();
                    cx.emit(ProtocolEvent::Reconnect {
                        reason: format!("malformed MQTT packet: {e}"),
                        after: None,
                    });
                    return Err(ProtocolError::Malformed(e.to_string()));
                }
            }
        }
        // The start of a packet waits for the rest (decode refused it if over the limit).
        self.partial.extend_from_slice(&buf);
        Ok(())
    }

    fn validate(&self, msg: &OutgoingMessage) -> Result<(), EncodeError> {
        check_topic(&msg.channel, false)
    }

    transmit_through_codec!();

    fn on_close(&mut self, cx: &mut Context<'_>) {
        if let Some(frame) = self.goodbye() {
            cx.transmit(frame);
        }
    }
}

/// The frames the [`Protocol`] methods transmit: the vendor's codec, callable on its own.
impl Mqtt {
    /// The frame [`Protocol::on_heartbeat`] transmits.
    pub fn heartbeat_frame(&mut self, _now: Instant) -> Frame {
        Self::frame(&Packet::PingReq)
    }

    /// The frame [`Protocol::on_send`] transmits for `msg`, and whether the server will ack it.
    pub fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(Delivery, Frame), EncodeError> {
        check_topic(&msg.channel, false)?;
        let qos = match msg.delivery {
            Some(Delivery::AtLeastOnce) => 1,
            Some(_) => 0,
            None => self.qos,
        };
        let packet_id = (qos == 1).then(|| self.packet_id()).transpose()?;
        if let Some(packet_id) = packet_id {
            self.inflight.insert(packet_id, send.id);
        }
        let mut out = Vec::new();
        let publish = Publish {
            dup: send.redelivery && qos == 1,
            qos,
            retain: msg.retain,
            packet_id,
        };
        publish.encode(&mut out, &msg.channel, msg.body.as_bytes());
        let frame = Frame::Binary(out.into());
        Ok(match packet_id {
            Some(_) => (Delivery::AtLeastOnce, frame),
            None => (Delivery::AtMostOnce, frame),
        })
    }

    /// The frame [`Protocol::on_subscribe`] transmits, if the vendor subscribes at all.
    pub fn encode_subscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        check_topic(channel, true)?;
        // One pending SUBACK per topic: a resubscribe replaces the older one.
        self.subscribing.retain(|_, topic| topic != channel);
        let packet_id = self.packet_id()?;
        self.subscribing.insert(packet_id, channel.to_owned());
        Ok(Some(Self::frame(&Packet::Subscribe {
            packet_id,
            topics: vec![(channel.to_owned(), 1)],
        })))
    }

    /// The frame [`Protocol::on_unsubscribe`] transmits, if any.
    pub fn encode_unsubscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        check_topic(channel, true)?;
        // No `Subscribed` later for a topic no longer wanted.
        self.subscribing.retain(|_, topic| topic != channel);
        let packet_id = self.packet_id()?;
        Ok(Some(Self::frame(&Packet::Unsubscribe {
            packet_id,
            topics: vec![channel.to_owned()],
        })))
    }

    /// The frame [`Protocol::on_close`] transmits, if any.
    pub fn goodbye(&mut self) -> Option<Frame> {
        Some(Self::frame(&Packet::Disconnect))
    }
}
