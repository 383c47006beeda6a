//! Socket.IO v4 over Engine.IO 4, WebSocket transport only, as socket.io-client speaks it.
//!
//! The endpoint is the server's URL as socket.io-client takes it: `http(s)://host[:port][/ns]`
//! becomes `ws(s)://host[:port]/socket.io/?EIO=4&transport=websocket` (the path is
//! [`SocketIo::path`], the URL's path is the namespace, its query is kept); a `ws(s)://` URL is
//! opened as given. Engine.IO's open packet (`0{…}`) dictates the heartbeat: the server pings
//! (`2`) every `pingInterval`, the client answers (`3`), and silence for `pingInterval +
//! pingTimeout` is a dead link (H2). The namespace connect (`40`) completes the handshake.
//!
//! Channel = event name. A plain emit (`42["channel", body]`) carries no ack id and ends `Sent`
//! (at-most-once), as `socket.emit` does. Acked emits are an opt-in, per client
//! ([`SocketIo::ack_emits`]) or per message ([`Delivery::AtLeastOnce`]): `42<id>[…]`, and the
//! server's `43<id>[…]` is the message's ack (Q3; the core retries after `Config::ack_timeout`,
//! as socket.io-client's `ackTimeout`/`retries`). Receiving needs no server cooperation: every
//! event the server emits to this socket is delivered, and `subscribe` sends nothing unless the
//! application has a room-join event of its own ([`SocketIo::room_events`]). A server-side
//! disconnect (`41`) is a kick: the client does not reconnect (socket.io-client's `io server
//! disconnect`). Binary attachments (`45`, `46`) are refused with a clear error.
//!
//! Connection state recovery (a server started with `connectionStateRecovery`, Socket.IO 4.6+)
//! is followed as socket.io-client follows it: the server's namespace connect names a private
//! session id (`pid`), each event it sends carries its offset as a last string argument (taken
//! off the message here), and a reconnect presents `{pid, offset}` in the connect. A server
//! that recovers the session answers with the same `pid` and sends what was missed
//! (`Event::Connected { recovered: true }`); one that cannot (too long away, another node
//! without a shared adapter) answers with a new one, reported as `ReportedError::Gap`. Events
//! the server emits with an ack request or as volatile carry no offset and are not replayed.

mod scan;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use web_time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::HeartbeatMode;
use crate::message::{Body, Delivery, Json, Message, OutgoingMessage, SendId};
use crate::protocol::{
    check_json_depth, refuse_retain, Context, EncodeError, Protocol, ProtocolError, ProtocolEvent,
    SendInfo,
};
use crate::text::Text;
use crate::transport::{Endpoint, Frame};

/// A Socket.IO client session on one namespace.
pub struct SocketIo {
    /// Sent with the namespace connect (`40{auth}`): tokens live here, never printed.
    auth: Option<Value>,
    /// The namespace set by [`namespace`](Self::namespace); else the endpoint URL's path.
    namespace: Option<String>,
    /// The namespace the current endpoint's URL names (`http://host/chat` → `/chat`).
    url_namespace: Option<String>,
    /// The Engine.IO path for `http(s)://` endpoints.
    path: String,
    /// Every emit asks for an ack unless the message says otherwise.
    ack_emits: bool,
    /// The application's own room-join and room-leave events, if it has them.
    room_events: Option<(String, String)>,
    next_ack: u64,
    /// Ack id → send, for `43` (Q3). One per acked emit in flight; reset per connection.
    inflight: HashMap<u64, SendId>,
    /// Ack id → room, for the acked join event. At most one per desired channel: a leave
    /// removes the room's entry.
    subscribing: HashMap<u64, String>,
    /// Connection state recovery: the private session id the server gave (presented in each
    /// connect until the answer replaces it), and the offset of the last event received (see
    /// the module docs).
    pid: Option<String>,
    offset: Option<String>,
    /// The namespace connect was answered on this connection.
    connected: bool,
    /// Events that came before the namespace connect's answer (a recovering server sends what
    /// was missed first): delivered right after it, as socket.io-client does. Bounded.
    early: Vec<Message>,
}

/// Events a server may send ahead of its namespace connect: more is a violation.
const MAX_EARLY_EVENTS: usize = 4096;

/// The namespace connect's answer: the private session id when the server recovers sessions.
#[derive(Deserialize)]
struct Connected {
    pid: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Open {
    ping_interval: u64,
    ping_timeout: u64,
}

impl SocketIo {
    /// The default namespace `/`, plain emits (at-most-once), no room events.
    pub fn new() -> Self {
        SocketIo {
            auth: None,
            namespace: None,
            url_namespace: None,
            path: "/socket.io/".to_owned(),
            ack_emits: false,
            room_events: None,
            next_ack: 0,
            inflight: HashMap::new(),
            subscribing: HashMap::new(),
            pid: None,
            offset: None,
            connected: false,
            early: Vec::new(),
        }
    }

    /// The `auth` object of the namespace connect (Socket.IO's place for credentials).
    pub fn with_auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Connect to namespace `ns` (`"/chat"`; a missing leading `/` is added), whatever the
    /// endpoint URL's path says.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        self.namespace = Some(if ns.starts_with('/') {
            ns
        } else {
            format!("/{ns}")
        });
        self
    }

    /// The server's Engine.IO path (socket.io's `path` option), for `http(s)://` endpoints.
    /// Default `/socket.io/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        self.path = path;
        self
    }

    /// Whether every emit asks the server for an ack (socket.io-client's `ackTimeout` option):
    /// the message is then held until the server's handler calls its callback, and retried or
    /// reported `Undelivered` if it does not. Off by default; the server must acknowledge.
    pub fn ack_emits(mut self, on: bool) -> Self {
        self.ack_emits = on;
        self
    }

    /// The application's own events for joining and leaving a room: `subscribe(room)` emits
    /// `join` with the room name, acked (`Subscribed` on the ack), `unsubscribe` emits `leave`.
    pub fn room_events(mut self, join: impl Into<String>, leave: impl Into<String>) -> Self {
        self.room_events = Some((join.into(), leave.into()));
        self
    }

    /// A free ack id: the next one not awaiting an ack. The maps hold at most the outbox and
    /// the subscriptions, so a free id is near; the bound turns a broken invariant into an
    /// error instead of a search without end.
    fn ack_id(&mut self) -> Result<u64, EncodeError> {
        for _ in 0..=self.inflight.len() + self.subscribing.len() {
            self.next_ack = self.next_ack.wrapping_add(1);
            let id = self.next_ack;
            if !self.inflight.contains_key(&id) && !self.subscribing.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(EncodeError::Exhausted {
            protocol: "socket.io",
            what: "ack ids",
        })
    }

    /// The namespace of this connection.
    fn ns(&self) -> &str {
        self.namespace
            .as_deref()
            .or(self.url_namespace.as_deref())
            .unwrap_or("/")
    }

    /// `42[/ns,][id][event,arg]`.
    fn emit(&self, ack: Option<u64>, event: &str, arg: &str) -> Frame {
        let event = Value::String(event.to_owned());
        let id = ack.map(|a| a.to_string()).unwrap_or_default();
        Frame::Text(format!("42{}{id}[{event},{arg}]", self.ns_prefix()).into())
    }

    /// `/ns,` for a namespace other than `/`, which packets leave out.
    fn ns_prefix(&self) -> String {
        match self.ns() {
            "/" => String::new(),
            ns => format!("{ns},"),
        }
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
            .field("namespace", &self.ns())
            .field("ack_emits", &self.ack_emits)
            .finish_non_exhaustive()
    }
}

/// `http(s)://host[:port][/path][?query]` → the Engine.IO WebSocket URL on `engine_path` and the
/// namespace the path names; `None` for any other scheme.
fn engine_url(url: &str, engine_path: &str) -> Option<(String, Option<String>)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("ws", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("wss", rest)
    } else {
        return None;
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let path = path.trim_end_matches('/');
    let namespace = (!path.is_empty()).then(|| path.to_owned());
    let mut out = format!("{scheme}://{authority}{engine_path}?EIO=4&transport=websocket");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('&');
        out.push_str(q);
    }
    Some((out, namespace))
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

    fn resolve_endpoint(&mut self, endpoint: &Endpoint) -> Option<Endpoint> {
        let (url, namespace) = match engine_url(endpoint.url(), &self.path) {
            Some((url, namespace)) => (Some(Endpoint::new(url)), namespace),
            None => (None, None),
        };
        self.url_namespace = namespace;
        url
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {
        // The server speaks first (Engine.IO open packet).
        self.inflight.clear();
        self.subscribing.clear();
        self.connected = false;
        self.early = Vec::new();
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
        let text = match self.on_event_fast(cx, text) {
            Ok(handled) => return handled,
            Err(declined) => declined,
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
                let ns = self.ns_prefix();
                let connect = match self.connect_data() {
                    Some(data) => format!("40{ns}{data}"),
                    None => format!("40{ns}"),
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

    fn validate(&self, msg: &OutgoingMessage) -> Result<(), EncodeError> {
        refuse_retain("socket.io", msg)?;
        match msg.body {
            Body::Binary(_) => Err(EncodeError::UnsupportedBody {
                protocol: "socket.io",
                body: "binary",
            }),
            _ if msg.channel.is_empty() => Err(EncodeError::InvalidChannel(String::new())),
            _ => Ok(()),
        }
    }

    transmit_through_codec!();

    fn on_close(&mut self, cx: &mut Context<'_>) {
        if let Some(frame) = self.goodbye() {
            cx.transmit(frame);
        }
    }
}

/// The frames the [`Protocol`] methods transmit: the vendor's codec, callable on its own.
impl SocketIo {
    /// The frame [`Protocol::on_heartbeat`] transmits.
    pub fn heartbeat_frame(&mut self, _now: Instant) -> Frame {
        // Only used if the configuration forces a client-driven mode: Engine.IO's pong.
        Frame::Text("3".into())
    }

    /// The frame [`Protocol::on_send`] transmits for `msg`, and whether the server will ack it.
    pub fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(Delivery, Frame), EncodeError> {
        self.validate(msg)?;
        let arg = match &msg.body {
            Body::Json(raw) => raw.get().to_owned(),
            Body::Text(t) => Value::String(t.as_str().to_owned()).to_string(),
            _ => unreachable!("validated above"),
        };
        let acked = match msg.delivery {
            Some(Delivery::AtLeastOnce) => true,
            Some(_) => false,
            None => self.ack_emits,
        };
        if !acked {
            return Ok((Delivery::AtMostOnce, self.emit(None, &msg.channel, &arg)));
        }
        let ack = self.ack_id()?;
        self.inflight.insert(ack, send.id);
        Ok((
            Delivery::AtLeastOnce,
            self.emit(Some(ack), &msg.channel, &arg),
        ))
    }

    /// The frame [`Protocol::on_subscribe`] transmits, if the vendor subscribes at all.
    pub fn encode_subscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        let Some((join, _)) = &self.room_events else {
            // Listening to an event needs nothing from the server.
            return Ok(None);
        };
        let join = join.clone();
        self.subscribing.retain(|_, room| room != channel);
        let ack = self.ack_id()?;
        self.subscribing.insert(ack, channel.to_owned());
        let room = Value::String(channel.to_owned()).to_string();
        Ok(Some(self.emit(Some(ack), &join, &room)))
    }

    /// The frame [`Protocol::on_unsubscribe`] transmits, if any.
    pub fn encode_unsubscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        let Some((_, leave)) = &self.room_events else {
            return Ok(None);
        };
        let leave = leave.clone();
        // No `Subscribed` for a room no longer wanted.
        self.subscribing.retain(|_, room| room != channel);
        let room = Value::String(channel.to_owned()).to_string();
        Ok(Some(self.emit(None, &leave, &room)))
    }

    /// The frame [`Protocol::on_close`] transmits, if any.
    pub fn goodbye(&mut self) -> Option<Frame> {
        Some(Frame::Text(format!("41{}", self.ns_prefix()).into()))
    }
}

impl SocketIo {
    /// The namespace connect's data: the `auth` object, with `{pid, offset}` when a session
    /// may be recovered.
    fn connect_data(&self) -> Option<Value> {
        let Some(pid) = &self.pid else {
            return self.auth.clone();
        };
        let mut data = match &self.auth {
            Some(Value::Object(auth)) => auth.clone(),
            _ => serde_json::Map::new(),
        };
        data.insert("pid".into(), Value::String(pid.clone()));
        if let Some(offset) = &self.offset {
            data.insert("offset".into(), Value::String(offset.clone()));
        }
        Some(Value::Object(data))
    }

    /// The namespace connect succeeded: was the session recovered?
    fn on_connected(&mut self, cx: &mut Context<'_>, data: &str) {
        let pid = serde_json::from_str::<Connected>(data)
            .ok()
            .and_then(|c| c.pid);
        // `self.pid` is what this connection's connect presented: only this answer changes it.
        match (&self.pid, &pid) {
            (Some(old), Some(new)) if old == new => cx.emit(ProtocolEvent::Resumed),
            (Some(_), _) => {
                // What was sent while the client was away is not coming.
                self.offset = None;
                cx.emit(ProtocolEvent::Gap {
                    reason: "the Socket.IO server could not recover the session (away too long, \
                             or a node without it)"
                        .into(),
                });
            }
            (None, _) => {}
        }
        self.pid = pid;
    }

    /// A Socket.IO packet (after the Engine.IO `4`).
    fn on_socket_packet(
        &mut self,
        cx: &mut Context<'_>,
        packet: &str,
    ) -> Result<(), ProtocolError> {
        let (kind, rest) =
            packet_type(packet).ok_or_else(|| malformed("empty or non-ASCII Socket.IO packet"))?;
        let (ns, rest) = split_namespace(rest);
        if ns != self.ns() {
            return Err(ProtocolError::Violation(format!(
                "Socket.IO packet for namespace {:?}, connected to {:?}",
                truncate(ns),
                self.ns()
            )));
        }
        match kind {
            b'0' => {
                self.on_connected(cx, rest);
                self.connected = true;
                cx.emit(ProtocolEvent::Ready);
                for message in std::mem::take(&mut self.early) {
                    cx.emit(ProtocolEvent::Message(message));
                }
            }
            b'1' => cx.emit(ProtocolEvent::Kicked {
                reason: "disconnected by the server".into(),
            }),
            b'2' => {
                let (ack, json) = split_ack(rest)?;
                let with_offset = self.pid.is_some() && ack.is_none();
                let (channel, body, offset) = event_with_serde(json, with_offset)?;
                self.on_event(cx, channel.into(), body.into(), ack, offset)?;
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

impl SocketIo {
    /// An event (`42…`) the one-pass scanner reads (`scan`), handled without serde and without
    /// copying its body; any other packet, or an event it declines, is handed back untouched.
    fn on_event_fast(
        &mut self,
        cx: &mut Context<'_>,
        text: Text,
    ) -> Result<Result<(), ProtocolError>, Text> {
        let Some(packet) = text.strip_prefix("42") else {
            return Err(text);
        };
        let (ns, rest) = split_namespace(packet);
        // The depth check the serde path makes counts brackets in a namespace too: leave any
        // such namespace to it.
        let plain_ns = ns == "/" || !ns.bytes().any(|b| matches!(b, b'[' | b'{' | b'"'));
        if ns != self.ns() || !plain_ns {
            return Err(text);
        }
        let Ok((ack, json)) = split_ack(rest) else {
            return Err(text);
        };
        let with_offset = self.pid.is_some() && ack.is_none();
        let Some(event) = scan::event(json, cx.limits.max_json_depth, with_offset) else {
            return Err(text);
        };
        let Some(body) = text.range_of(event.body) else {
            return Err(text);
        };
        let channel = text.slice_ref(event.name);
        let offset = event.offset.map(str::to_owned);
        // The body keeps the frame's buffer: no copy, no count taken on it.
        let Some(body) = Json::from_checked_part(text, body) else {
            return Ok(Err(malformed("event body")));
        };
        Ok(self.on_event(cx, channel, body, ack, offset))
    }

    /// An event, however it was read: delivered (or held until the namespace connect), its
    /// offset kept, and acknowledged when the server asked.
    fn on_event(
        &mut self,
        cx: &mut Context<'_>,
        channel: Text,
        body: Json,
        ack: Option<u64>,
        offset: Option<String>,
    ) -> Result<(), ProtocolError> {
        if offset.is_some() {
            self.offset = offset;
        }
        let message = Message::new(channel, Body::Json(body));
        if self.connected {
            cx.emit(ProtocolEvent::Message(message));
        } else if self.early.len() < MAX_EARLY_EVENTS {
            self.early.push(message);
        } else {
            return Err(ProtocolError::Violation(format!(
                "more than {MAX_EARLY_EVENTS} events before the namespace connect"
            )));
        }
        if let Some(id) = ack {
            // The server asked for an acknowledgement: we have the message.
            let ns = self.ns_prefix();
            cx.transmit(Frame::Text(format!("43{ns}{id}[]").into()));
        }
        Ok(())
    }
}

/// An event's name, body and recovery offset, read with serde: every event the scanner
/// declines. Under recovery (`with_offset`) a last string argument is the offset; one argument
/// is the body, several are the body as an array of them.
fn event_with_serde(
    json: &str,
    with_offset: bool,
) -> Result<(String, Box<RawValue>, Option<String>), ProtocolError> {
    let args: Vec<&RawValue> = serde_json::from_str(json).map_err(|e| malformed(&e.to_string()))?;
    let (event, mut args) = args
        .split_first()
        .ok_or_else(|| malformed("event without a name"))?;
    let mut offset = None;
    if with_offset {
        if let Some((last, rest)) = args.split_last() {
            if let Ok(o) = serde_json::from_str::<String>(last.get()) {
                offset = Some(o);
                args = rest;
            }
        }
    }
    let channel: String = serde_json::from_str(event.get()).map_err(|_| malformed("event name"))?;
    let body = match args {
        [one] => (*one).to_owned(),
        many => serde_json::value::to_raw_value(many).map_err(|e| malformed(&e.to_string()))?,
    };
    Ok((channel, body, offset))
}

/// `/ns,rest` into the namespace and the rest; `/` when the packet names none.
fn split_namespace(packet: &str) -> (&str, &str) {
    match packet.strip_prefix('/') {
        Some(_) => match packet.split_once(',') {
            Some((ns, rest)) => (ns, rest),
            None => (packet, ""),
        },
        None => ("/", packet),
    }
}

/// Names from a hostile server are echoed in errors: at most 64 bytes of them.
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_become_engine_io_urls_with_the_path_as_namespace() {
        let cases = [
            (
                "http://127.0.0.1:3000",
                "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket",
                None,
            ),
            (
                "https://chat.example.com/",
                "wss://chat.example.com/socket.io/?EIO=4&transport=websocket",
                None,
            ),
            (
                "http://h:1/admin?token=t",
                "ws://h:1/socket.io/?EIO=4&transport=websocket&token=t",
                Some("/admin"),
            ),
        ];
        for (url, engine, ns) in cases {
            let (got, got_ns) = engine_url(url, "/socket.io/").unwrap();
            assert_eq!(got, engine, "{url}");
            assert_eq!(got_ns.as_deref(), ns, "{url}");
        }
        assert_eq!(engine_url("ws://h/socket.io/?EIO=4", "/socket.io/"), None);
        let (custom, _) = engine_url("http://h", "/rt/").unwrap();
        assert_eq!(custom, "ws://h/rt/?EIO=4&transport=websocket");
    }
}
