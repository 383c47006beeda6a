//! Socket.IO v4 over Engine.IO 4, WebSocket transport only, default namespace.
//!
//! The endpoint is the server's Engine.IO URL: `ws://host:port/socket.io/?EIO=4&transport=websocket`.
//! Engine.IO's open packet (`0{…}`) dictates the heartbeat: the server pings (`2`) every
//! `pingInterval`, the client answers (`3`), and silence for `pingInterval + pingTimeout` is a
//! dead link (H2). The namespace connect (`40`) completes the handshake.
//!
//! Event name = channel. Sending emits `42<ack id>["channel", body]` and the server's ack
//! (`43<ack id>[…]`) is the message's ack (Q3). Subscribing emits `subscribe` with the room name
//! (acked); the server decides what rooms mean. A server-side disconnect (`41`) is a kick: the
//! server said goodbye to this socket, so the client does not reconnect. Binary attachments
//! (`45`, `46`) are refused with a clear error.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::HeartbeatMode;
use crate::message::{Body, Message, OutgoingMessage, SendId};
use crate::protocol::{
    check_json_depth, Context, EncodeError, Protocol, ProtocolError, ProtocolEvent, SendInfo,
};
use crate::transport::Frame;

/// A Socket.IO client session on the default namespace.
pub struct SocketIo {
    /// Sent with the namespace connect (`40{auth}`): tokens live here, never printed.
    auth: Option<Value>,
    next_ack: u64,
    /// Ack id → send, for `43` (Q3). Bounded by the outbox; reset per connection.
    inflight: HashMap<u64, SendId>,
    /// Ack id → room, for the acked `subscribe`.
    subscribing: HashMap<u64, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Open {
    ping_interval: u64,
    ping_timeout: u64,
}

impl SocketIo {
    pub fn new() -> Self {
        SocketIo {
            auth: None,
            next_ack: 0,
            inflight: HashMap::new(),
            subscribing: HashMap::new(),
        }
    }

    /// The `auth` object of the namespace connect (Socket.IO's place for credentials).
    pub fn with_auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    fn ack_id(&mut self) -> u64 {
        self.next_ack += 1;
        self.next_ack
    }

    fn emit(ack: Option<u64>, event: &str, arg: &str) -> Frame {
        let event = Value::String(event.to_owned());
        let id = ack.map(|a| a.to_string()).unwrap_or_default();
        Frame::Text(format!("42{id}[{event},{arg}]").into())
    }
}

impl Default for SocketIo {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIo")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The packet type (one ASCII character) and the rest. `None` for an empty or non-ASCII start:
/// splitting at byte 1 of a multi-byte character would panic (found by `socketio_decode`).
fn packet_type(s: &str) -> Option<(u8, &str)> {
    let first = *s.as_bytes().first()?;
    first.is_ascii().then(|| (first, &s[1..]))
}

/// Split `<digits>rest` into the optional ack id and the rest.
fn split_ack(s: &str) -> Result<(Option<u64>, &str), ProtocolError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, s));
    }
    let id = s[..digits]
        .parse()
        .map_err(|_| ProtocolError::Malformed("ack id out of range".into()))?;
    Ok((Some(id), &s[digits..]))
}

fn malformed(what: &str) -> ProtocolError {
    ProtocolError::Malformed(format!("Socket.IO: {what}"))
}

impl Protocol for SocketIo {
    fn name(&self) -> &'static str {
        "socket.io"
    }

    fn acks(&self) -> bool {
        true
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {
        // The server speaks first (Engine.IO open packet).
        self.inflight.clear();
        self.subscribing.clear();
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary(_) => {
                return Err(ProtocolError::UnexpectedFrame(
                    "binary (Socket.IO attachments are not supported)",
                ))
            }
            _ => return Ok(()),
        };
        check_json_depth(&text, cx.limits.max_json_depth)?;
        let (kind, rest) =
            packet_type(&text).ok_or_else(|| malformed("empty or non-ASCII packet"))?;
        match kind {
            // Engine.IO open: the server dictates the heartbeat.
            b'0' => {
                let open: Open =
                    serde_json::from_str(rest).map_err(|e| malformed(&e.to_string()))?;
                cx.emit(ProtocolEvent::Heartbeat(HeartbeatMode::ServerDriven {
                    interval: Duration::from_millis(open.ping_interval.max(1)),
                    timeout: Duration::from_millis(open.ping_timeout.max(1)),
                }));
                let connect = match &self.auth {
                    Some(auth) => format!("40{auth}"),
                    None => "40".to_owned(),
                };
                cx.transmit(Frame::Text(connect.into()));
            }
            b'1' => cx.emit(ProtocolEvent::Reconnect {
                reason: "Engine.IO close".into(),
                after: None,
            }),
            b'2' => {
                cx.transmit(Frame::Text("3".into()));
                cx.emit(ProtocolEvent::ServerPing);
            }
            b'3' => cx.emit(ProtocolEvent::Pong),
            b'6' => {}
            b'4' => self.on_socket_packet(cx, rest)?,
            _ => return Err(malformed("unknown Engine.IO packet")),
        }
        Ok(())
    }

    fn heartbeat(&mut self, _now: Instant) -> Frame {
        // Only used if the configuration forces a client-driven mode: Engine.IO's pong.
        Frame::Text("3".into())
    }

    fn validate(&self, msg: &OutgoingMessage) -> Result<(), EncodeError> {
        match msg.body {
            Body::Binary(_) => Err(EncodeError::UnsupportedBody {
                protocol: "socket.io",
                body: "binary",
            }),
            _ if msg.channel.is_empty() => Err(EncodeError::InvalidChannel(String::new())),
            _ => Ok(()),
        }
    }

    fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<Frame, EncodeError> {
        self.validate(msg)?;
        let arg = match &msg.body {
            Body::Json(raw) => raw.get().to_owned(),
            Body::Text(t) => Value::String(t.clone()).to_string(),
            _ => unreachable!("validated above"),
        };
        let ack = self.ack_id();
        self.inflight.insert(ack, send.id);
        Ok(Self::emit(Some(ack), &msg.channel, &arg))
    }

    fn encode_subscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        let ack = self.ack_id();
        self.subscribing.insert(ack, channel.to_owned());
        let room = Value::String(channel.to_owned()).to_string();
        Ok(Some(Self::emit(Some(ack), "subscribe", &room)))
    }

    fn encode_unsubscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        let room = Value::String(channel.to_owned()).to_string();
        Ok(Some(Self::emit(None, "unsubscribe", &room)))
    }

    fn on_close(&mut self) -> Option<Frame> {
        Some(Frame::Text("41".into()))
    }
}

impl SocketIo {
    /// A Socket.IO packet (after the Engine.IO `4`).
    fn on_socket_packet(
        &mut self,
        cx: &mut Context<'_>,
        packet: &str,
    ) -> Result<(), ProtocolError> {
        let (kind, rest) =
            packet_type(packet).ok_or_else(|| malformed("empty or non-ASCII Socket.IO packet"))?;
        match kind {
            b'0' => cx.emit(ProtocolEvent::Ready),
            b'1' => cx.emit(ProtocolEvent::Kicked {
                reason: "disconnected by the server".into(),
            }),
            b'2' => {
                let (ack, json) = split_ack(rest)?;
                let args: Vec<&RawValue> =
                    serde_json::from_str(json).map_err(|e| malformed(&e.to_string()))?;
                let (event, args) = args
                    .split_first()
                    .ok_or_else(|| malformed("event without a name"))?;
                let channel: String =
                    serde_json::from_str(event.get()).map_err(|_| malformed("event name"))?;
                let body = match args {
                    [one] => (*one).to_owned(),
                    many => serde_json::value::to_raw_value(many)
                        .map_err(|e| malformed(&e.to_string()))?,
                };
                cx.emit(ProtocolEvent::Message(Message::new(
                    channel,
                    Body::Json(body.into()),
                )));
                if let Some(id) = ack {
                    // The server asked for an acknowledgement: we have the message.
                    cx.transmit(Frame::Text(format!("43{id}[]").into()));
                }
            }
            b'3' => {
                let (ack, _) = split_ack(rest)?;
                let ack = ack.ok_or_else(|| malformed("ack without an id"))?;
                if let Some(id) = self.inflight.remove(&ack) {
                    cx.emit(ProtocolEvent::Acked(id));
                } else if let Some(room) = self.subscribing.remove(&ack) {
                    cx.emit(ProtocolEvent::Subscribed(room));
                }
            }
            b'4' => {
                let reason = serde_json::from_str::<Value>(rest)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "connection refused".into());
                cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(reason)));
            }
            b'5' | b'6' => {
                return Err(ProtocolError::UnexpectedFrame(
                    "binary event (Socket.IO attachments are not supported)",
                ))
            }
            _ => return Err(malformed("unknown Socket.IO packet")),
        }
        Ok(())
    }
}
