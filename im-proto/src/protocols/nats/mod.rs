//! NATS over WebSocket: the NATS client protocol (text, CRLF-framed, in binary WebSocket frames).
//!
//! `INFO` → `CONNECT` + `PING`; the first `PONG` completes the handshake. Heartbeats both ways:
//! the client pings (H1, `PONG` answers), the server's `PING` is answered with `PONG`. Channels
//! are subjects: `SUB`/`UNSUB`/`PUB`, and `MSG`/`HMSG` deliver. NATS core is at-most-once (no
//! acks): a message is `Sent` once handed to the socket. `INFO.connect_urls` (the cluster's
//! WebSocket endpoints) feed endpoint rotation (R7). `-ERR` for authorization is fatal;
//! `'Stale Connection'` reconnects; other errors are reported.
//!
//! With [`Nats::jetstream`] the same connection speaks JetStream: publishes are acked by the
//! stream and deduplicated by their idempotency key, and each subscription is a durable
//! consumer that replays what the client missed across reconnects, failovers and restarts
//! (see [`jetstream`]).

pub mod jetstream;

pub use jetstream::JetStream;

use std::collections::HashMap;
use std::fmt;
use web_time::Instant;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::json;

use crate::message::{Body, Delivery, Message, OutgoingMessage, SendId};
use crate::protocol::{
    refuse_retain, Context, EncodeError, Protocol, ProtocolError, ProtocolEvent, SendInfo,
};
use crate::transport::{Endpoint, Frame};

/// A NATS client session.
pub struct Nats {
    name: String,
    /// `CONNECT`'s credentials (a token, or user and password); never printed.
    auth: Option<Auth>,
    /// Bytes of an operation split across frames; bounded by the frame limit.
    partial: BytesMut,
    /// `CONNECT` went out on this connection (later `INFO`s only update the cluster).
    sent_connect: bool,
    /// Waiting for the `PONG` that answers `CONNECT` + `PING`.
    handshaking: bool,
    next_sid: u64,
    /// Subject → subscription id, per connection.
    sids: HashMap<String, u64>,
    /// Scheme for discovered endpoints (`wss` when the first endpoint was).
    secure: bool,
    /// JetStream, when the client speaks it.
    js: Option<jetstream::Session>,
    /// This connection's reply subject prefix (JetStream's answers come to `<inbox>.<what>`),
    /// made of the server's id and the connection's id there, so no other client shares it.
    inbox: String,
}

enum Auth {
    Token(String),
    User(String, String),
}

/// An operation: its name as [`operation`] spells it (`""` for none NATS has), its line, the
/// line's words and its payload (`MSG`, `HMSG`), all borrowed from the bytes read, and how many
/// of those it used.
struct Op<'a> {
    name: &'static str,
    line: &'a str,
    words: Words<'a>,
    payload: Option<&'a [u8]>,
    used: usize,
}

/// The words of an operation's line, split once (the decoder's hottest line: every message
/// has one). `MSG subject sid [reply] size` and `HMSG … header_size size` have at most six;
/// a line with more is refused, and its words past the seventh are not looked at.
#[derive(Clone, Copy, Default)]
struct Words<'a> {
    kept: [&'a str; 6],
    count: usize,
}

impl<'a> Words<'a> {
    fn split(line: &'a str) -> Words<'a> {
        let mut words = Words::default();
        for word in line.split_ascii_whitespace() {
            let Some(slot) = words.kept.get_mut(words.count) else {
                // A seventh word is enough to refuse the line: the rest (an `INFO`'s JSON, a
                // hostile line up to the frame limit) is not walked.
                words.count += 1;
                break;
            };
            *slot = word;
            words.count += 1;
        }
        words
    }

    /// Every word, or `None` when there were more than six.
    fn all(&self) -> Option<&[&'a str]> {
        self.kept.get(..self.count)
    }
}

/// The operations a NATS server sends, as the protocol spells them (it takes any case).
const OPERATIONS: [&str; 7] = ["MSG", "HMSG", "PING", "PONG", "+OK", "-ERR", "INFO"];

/// The operation `word` names, in the protocol's capitals; `None` for anything else. (Compared
/// in place: an upper-cased copy cost an allocation per message.)
fn operation(word: &str) -> Option<&'static str> {
    OPERATIONS
        .into_iter()
        .find(|op| word.eq_ignore_ascii_case(op))
}

/// Where the first `\r\n` of `buf` starts. (Searching for `\n` and looking back runs the
/// fast byte search; a pairwise window scan cost twice the rest of the decoder.)
fn line_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let nl = from + buf[from..].iter().position(|b| *b == b'\n')?;
        if nl > 0 && buf[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        from = nl + 1;
    }
}

#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    connect_urls: Vec<String>,
    #[serde(default)]
    ws_connect_urls: Vec<String>,
    #[serde(default)]
    server_id: String,
    #[serde(default)]
    client_id: u64,
}

impl Nats {
    pub fn new(name: impl Into<String>) -> Self {
        Nats {
            name: name.into(),
            auth: None,
            partial: BytesMut::new(),
            sent_connect: false,
            handshaking: false,
            next_sid: 0,
            sids: HashMap::new(),
            secure: false,
            js: None,
            inbox: String::new(),
        }
    }

    /// Speak JetStream on this connection: publishes stored and acked by the stream
    /// (at-least-once, deduplicated by idempotency key), subscriptions as durable consumers
    /// that replay what was missed. See [`JetStream`] and the [module docs](self).
    pub fn jetstream(mut self, settings: JetStream) -> Self {
        self.js = Some(jetstream::Session::new(settings));
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Token(token.into()));
        self
    }

    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::User(user.into(), password.into()));
        self
    }

    /// The durable JetStream consumer this client uses for `channel` (what `nats consumer
    /// info` shows an operator), or `None` without JetStream.
    pub fn consumer_name(&self, channel: &str) -> Option<String> {
        Some(self.js.as_ref()?.durable(&self.name, channel))
    }

    /// Discovered endpoints use `wss://` (default `ws://`; any `wss://` endpoint the client
    /// connects to turns this on for good, so discovery never downgrades to plain text).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    fn op(text: String) -> Frame {
        Frame::Binary(text.into())
    }

    fn connect(&self) -> Frame {
        let mut c = json!({
            "verbose": false, "pedantic": false, "lang": "rust", "version": "im",
            "protocol": 1, "headers": true, "no_responders": true, "name": self.name,
        });
        match &self.auth {
            Some(Auth::Token(t)) => c["auth_token"] = json!(t),
            Some(Auth::User(u, p)) => {
                c["user"] = json!(u);
                c["pass"] = json!(p);
            }
            None => {}
        }
        Self::op(format!("CONNECT {c}\r\nPING\r\n"))
    }

    /// One complete operation at the front of `buf`, or `None` until more bytes arrive. A
    /// message declaring a payload over `limit` bytes is refused at once: it could never be
    /// buffered, and its size may not even fit an offset.
    fn next_op(buf: &[u8], limit: usize) -> Result<Option<Op<'_>>, ProtocolError> {
        let Some(eol) = line_end(buf) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[..eol]).map_err(|_| ProtocolError::InvalidUtf8)?;
        // Fields are separated by spaces or tabs (the NATS protocol allows both).
        let words = Words::split(line);
        let name = operation(words.kept[0]).unwrap_or_default();
        let mut op = Op {
            name,
            line,
            words,
            payload: None,
            used: eol + 2,
        };
        if !matches!(name, "MSG" | "HMSG") {
            return Ok(Some(op));
        }
        // The size is the last word (of a line too long to keep, found again).
        let last = match words.all() {
            Some(all) => all.last().copied(),
            None => line.split_ascii_whitespace().next_back(),
        };
        let total = last
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ProtocolError::Malformed("NATS: MSG without a size".into()))?;
        if total > limit {
            return Err(ProtocolError::TooLarge { size: total, limit });
        }
        let start = eol + 2;
        let end = start.saturating_add(total);
        if buf.len() < end.saturating_add(2) {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::Malformed(
                "NATS: payload size mismatch".into(),
            ));
        }
        op.payload = Some(&buf[start..end]);
        op.used = end + 2;
        Ok(Some(op))
    }

    /// `frame` holds `line` and `payload`: a message's body is shared out of it.
    fn on_op(
        &mut self,
        cx: &mut Context<'_>,
        frame: &Bytes,
        op: Op<'_>,
    ) -> Result<(), ProtocolError> {
        let Op {
            name: op,
            line,
            words,
            payload,
            ..
        } = op;
        match op {
            "INFO" => {
                let json = line.get(4..).unwrap_or_default().trim();
                let info: Info = serde_json::from_str(json)
                    .map_err(|e| ProtocolError::Malformed(format!("NATS INFO: {e}")))?;
                let scheme = if self.secure { "wss" } else { "ws" };
                let found: Vec<Endpoint> = info
                    .ws_connect_urls
                    .iter()
                    .chain(&info.connect_urls)
                    .map(|u| {
                        let host = u.split_once("://").map_or(u.as_str(), |(_, h)| h);
                        // Never a downgrade: a cluster reached over TLS is rejoined over TLS,
                        // where the credentials in CONNECT cannot be read off the wire.
                        Endpoint::new(format!("{scheme}://{host}"))
                    })
                    .collect();
                if !found.is_empty() {
                    cx.emit(ProtocolEvent::Endpoints(found));
                }
                if !self.sent_connect {
                    let id: String = info
                        .server_id
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(64)
                        .collect();
                    self.inbox = format!("_INBOX.im{id}-{}", info.client_id);
                    self.sent_connect = true;
                    self.handshaking = true;
                    cx.transmit(self.connect());
                }
            }
            "PING" => {
                cx.transmit(Self::op("PONG\r\n".into()));
                cx.emit(ProtocolEvent::ServerPing);
            }
            "PONG" => {
                if self.handshaking {
                    self.handshaking = false;
                    if self.js.is_some() {
                        // Answers to publishes and consumer requests, before anything is sent.
                        let sid = self.take_sid();
                        cx.transmit(Self::op(format!("SUB {}.> {sid}\r\n", self.inbox)));
                    }
                    cx.emit(ProtocolEvent::Ready);
                } else {
                    cx.emit(ProtocolEvent::Pong);
                }
            }
            "+OK" => {}
            "-ERR" => {
                let why = line
                    .get(4..)
                    .unwrap_or_default()
                    .trim()
                    .trim_matches('\'')
                    .to_owned();
                let lower = why.to_ascii_lowercase();
                if lower.contains("authorization") || lower.contains("authentication") {
                    cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(why)));
                } else if lower.contains("stale connection") {
                    cx.emit(ProtocolEvent::Reconnect {
                        reason: why,
                        after: None,
                    });
                } else {
                    cx.emit(ProtocolEvent::Error(ProtocolError::Server(why)));
                }
            }
            "MSG" | "HMSG" => {
                // MSG subject sid [reply] size; HMSG subject sid [reply] header_size size.
                let Some(parts) = words.all() else {
                    return Err(ProtocolError::Malformed(format!("NATS: {op} line")));
                };
                let count = parts.len();
                let sizes = if op == "HMSG" { 2 } else { 1 };
                if !(3 + sizes..=4 + sizes).contains(&count) {
                    return Err(ProtocolError::Malformed(format!("NATS: {op} line")));
                }
                let reply = (count == 4 + sizes).then(|| parts[3]);
                let mut payload = payload.unwrap_or_default();
                let mut status = None;
                if op == "HMSG" {
                    let hdr: usize = parts[count - 2]
                        .parse()
                        .ok()
                        .filter(|h| *h <= payload.len())
                        .ok_or_else(|| ProtocolError::Malformed("NATS: HMSG header size".into()))?;
                    status = header_status(&payload[..hdr]);
                    payload = &payload[hdr..];
                }
                self.on_message(cx, frame, parts[1], reply, status, payload);
            }
            _ => {
                let head: String = words.kept[0].chars().take(64).collect();
                return Err(ProtocolError::Violation(format!(
                    "NATS: unknown operation {head:?}"
                )));
            }
        }
        Ok(())
    }
}

impl Nats {
    fn take_sid(&mut self) -> u64 {
        let sid = self.next_sid;
        // Per connection and one per subject: 2^64 subscriptions never come, and a wrap would
        // reuse ids long forgotten rather than panic.
        self.next_sid = self.next_sid.wrapping_add(1);
        sid
    }

    /// A delivered message: an answer to a JetStream request, a JetStream delivery (handed
    /// over, then acked), or a core message.
    fn on_message(
        &mut self,
        cx: &mut Context<'_>,
        frame: &Bytes,
        subject: &str,
        reply: Option<&str>,
        status: Option<u16>,
        payload: &[u8],
    ) {
        if let Some(js) = &mut self.js {
            let answer = subject
                .strip_prefix(self.inbox.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .filter(|_| !self.inbox.is_empty());
            if let Some(what) = answer {
                match jetstream::Reply::parse(what) {
                    Some(jetstream::Reply::Publish(id)) => {
                        match jetstream::read_reply(status, payload) {
                            Ok(_) => {
                                js.stored();
                                cx.emit(ProtocolEvent::Acked(SendId(id)));
                            }
                            // Q6: the stream will not take it, however often it is asked.
                            Err(jetstream::Refusal::Final(why)) => {
                                cx.emit(ProtocolEvent::Refused {
                                    id: SendId(id),
                                    reason: format!("JetStream did not store it: {why}"),
                                });
                            }
                            // Not acked: the core sends it again after its ack timeout, under
                            // the same `Nats-Msg-Id`, which the stream stores once.
                            Err(
                                jetstream::Refusal::Transient(why)
                                | jetstream::Refusal::Unreadable(why),
                            ) => {
                                if let Some(why) = js.report_refusal(why) {
                                    cx.emit(ProtocolEvent::Error(ProtocolError::Server(format!(
                                        "JetStream did not store a message: {why}"
                                    ))));
                                }
                            }
                        }
                    }
                    Some(jetstream::Reply::Consumer(n)) => {
                        let answer = jetstream::read_reply(status, payload);
                        let outcome = js.consumer_answer(n, &self.name, answer);
                        match outcome {
                            Some(jetstream::ConsumerAnswer::Bound { channel, recreated }) => {
                                if recreated {
                                    cx.emit(ProtocolEvent::Gap {
                                        reason: format!(
                                            "the JetStream consumer for {channel:?} was lost on \
                                             the server and made anew: what it held is gone"
                                        ),
                                    });
                                }
                                cx.emit(ProtocolEvent::Subscribed(channel));
                            }
                            Some(jetstream::ConsumerAnswer::Refused { channel, why }) => {
                                cx.emit(ProtocolEvent::SubscribeRefused {
                                    channel,
                                    reason: why,
                                });
                            }
                            Some(jetstream::ConsumerAnswer::Later) | None => {}
                        }
                    }
                    None => {}
                }
                return;
            }
            if let Some(delivered) = reply.and_then(jetstream::Delivered::parse) {
                if !js.already_handed_over(&delivered) {
                    let seq = delivered.stream_seq;
                    cx.emit(ProtocolEvent::Message(
                        Message::new(subject, body(frame, payload)).with_id(seq.to_string()),
                    ));
                }
                // Acked once handed over (or recognised as handed over before).
                if let Some(ack) = reply {
                    cx.transmit(Self::op(format!("PUB {ack} 0\r\n\r\n")));
                }
                return;
            }
        }
        cx.emit(ProtocolEvent::Message(Message::new(
            subject,
            body(frame, payload),
        )));
    }
}

/// A payload as a body shared with `frame`, which holds it: bytes, as NATS carries them
/// (whether they are text is the reader's question, `Body::as_text`).
fn body(frame: &Bytes, payload: &[u8]) -> Body {
    Body::Binary(frame.slice_ref(payload))
}

/// The status of an `HMSG` header block (`NATS/1.0 503`), if it has one.
fn header_status(block: &[u8]) -> Option<u16> {
    let first = block.split(|b| *b == b'\r').next()?;
    let text = std::str::from_utf8(first).ok()?;
    text.strip_prefix("NATS/1.0")?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

impl fmt::Debug for Nats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nats")
            .field("name", &self.name)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn check_subject(subject: &str, wildcards: bool) -> Result<(), EncodeError> {
    let bad = subject.is_empty()
        || subject.bytes().any(|b| b.is_ascii_whitespace() || b == 0)
        || (!wildcards && (subject.contains('*') || subject.contains('>')));
    if bad {
        Err(EncodeError::InvalidChannel(subject.to_owned()))
    } else {
        Ok(())
    }
}

impl Protocol for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn resolve_endpoint(&mut self, endpoint: &Endpoint) -> Option<Endpoint> {
        // The scheme of the endpoint in use decides the discovered ones' (see `secure`).
        if endpoint.url().starts_with("wss://") {
            self.secure = true;
        }
        None
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {
        // The server speaks first (INFO).
        self.partial.clear();
        self.sent_connect = false;
        self.handshaking = false;
        self.next_sid = 1;
        self.sids.clear();
        if let Some(js) = &mut self.js {
            js.on_open();
        }
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let bytes = match frame {
            Frame::Binary(b) => b,
            // nats-server sends binary frames; accept text too.
            Frame::Text(t) => t.into_bytes(),
            _ => return Ok(()),
        };
        // Operations are read from the frame itself, sharing it, unless an earlier one left a
        // piece of an operation behind.
        let data = if self.partial.is_empty() {
            bytes
        } else {
            self.partial.extend_from_slice(&bytes);
            self.partial.split().freeze()
        };
        let limit = cx.limits.max_frame_bytes;
        let mut used = 0;
        let result = loop {
            match Self::next_op(&data[used..], limit) {
                Ok(Some(op)) => {
                    used += op.used;
                    if let Err(e) = self.on_op(cx, &data, op) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    // The stream cannot be resynchronised after a broken frame: start over.
                    self.partial.clear();
                    cx.emit(ProtocolEvent::Reconnect {
                        reason: format!("NATS stream corrupted: {e}"),
                        after: None,
                    });
                    return Err(e);
                }
            }
        };
        // What is left waits for the next frame.
        self.partial.extend_from_slice(&data[used..]);
        if self.partial.len() > limit {
            self.partial.clear();
            cx.emit(ProtocolEvent::Reconnect {
                reason: "NATS operation over the frame limit".into(),
                after: None,
            });
            return Err(ProtocolError::TooLarge {
                size: limit + 1,
                limit,
            });
        }
        result
    }

    fn validate(&self, msg: &OutgoingMessage) -> Result<(), EncodeError> {
        if self.js.is_none() && msg.delivery == Some(Delivery::AtLeastOnce) {
            return Err(EncodeError::Unsupported {
                protocol: "nats",
                what: "acknowledge a publish (NATS core is at-most-once; JetStream acks)",
            });
        }
        refuse_retain("nats", msg)?;
        if self.js.is_some() && msg.key.as_deref().is_some_and(|k| k.contains(['\r', '\n'])) {
            // The key travels in a header line.
            return Err(EncodeError::Unsupported {
                protocol: "nats",
                what: "carry an idempotency key with a line break",
            });
        }
        check_subject(&msg.channel, false)
    }

    transmit_through_codec!();
}

/// The frames the [`Protocol`] methods transmit: the vendor's codec, callable on its own.
impl Nats {
    /// The frame [`Protocol::on_heartbeat`] transmits: a `PING`, with the JetStream consumer
    /// requests refused for now (no leader during a failover) asked again.
    pub fn heartbeat_frame(&mut self, _now: Instant) -> Frame {
        let mut ops = String::from("PING\r\n");
        if let Some(js) = &mut self.js {
            for channel in js.take_retries() {
                if self.sids.contains_key(&channel) {
                    let durable = js.durable(&self.name, &channel);
                    ops.push_str(&js.create_consumer(&self.inbox, &durable, &channel));
                }
            }
        }
        Self::op(ops)
    }

    /// The frame [`Protocol::on_send`] transmits for `msg`, and whether the server will ack it.
    /// With JetStream a message is published for the stream's ack unless it asked for
    /// at-most-once, its idempotency key in the `Nats-Msg-Id` header.
    pub fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(Delivery, Frame), EncodeError> {
        self.validate(msg)?;
        let payload = msg.body.as_bytes();
        let acked = self.js.is_some() && msg.delivery != Some(Delivery::AtMostOnce);
        if acked {
            let headers = format!("NATS/1.0\r\nNats-Msg-Id: {}\r\n\r\n", send.key);
            let mut out = format!(
                "HPUB {} {}.p{} {} {}\r\n{headers}",
                msg.channel,
                self.inbox,
                send.id.0,
                headers.len(),
                headers.len() + payload.len()
            )
            .into_bytes();
            out.extend_from_slice(payload);
            out.extend_from_slice(b"\r\n");
            return Ok((Delivery::AtLeastOnce, Frame::Binary(out.into())));
        }
        let mut out = format!("PUB {} {}\r\n", msg.channel, payload.len()).into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        Ok((Delivery::AtMostOnce, Frame::Binary(out.into())))
    }

    /// The frame [`Protocol::on_subscribe`] transmits, if the vendor subscribes at all. With
    /// JetStream: the subscription to the durable consumer's delivery subject, and the request
    /// that creates the consumer (or finds it, when it exists).
    pub fn encode_subscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        check_subject(channel, true)?;
        let sid = self.take_sid();
        self.sids.insert(channel.to_owned(), sid);
        let Some(js) = &mut self.js else {
            return Ok(Some(Self::op(format!("SUB {channel} {sid}\r\n"))));
        };
        let durable = js.durable(&self.name, channel);
        let deliver = jetstream::Session::deliver_subject(&durable);
        let create = js.create_consumer(&self.inbox, &durable, channel);
        Ok(Some(Self::op(format!("SUB {deliver} {sid}\r\n{create}"))))
    }

    /// The frame [`Protocol::on_unsubscribe`] transmits, if any.
    pub fn encode_unsubscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        if let Some(js) = &mut self.js {
            js.forget(channel);
        }
        Ok(self
            .sids
            .remove(channel)
            .map(|sid| Self::op(format!("UNSUB {sid}\r\n"))))
    }
}
