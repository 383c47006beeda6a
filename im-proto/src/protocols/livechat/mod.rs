//! livechat: the seed's vendor protocol, specified in `docs/protocols/livechat.md`.
//!
//! JSON text frames. The server challenges with `auth1`, the client answers `auth2` with
//! `md5(seed + key)`. Client-driven `wd_heartbeat`, answered by the server. `conn_close` means
//! logged in elsewhere: kicked, no reconnect.
//!
//! Two dialects, told apart by what the server shows in `auth1` (see [`Dialect`]): the seed's,
//! where the client is ready once it has written `auth2` and messages are at-most-once; and
//! im's, announced by `"dialect":"im"` in `auth1`'s result, which adds `auth_ok`/`auth_fail`,
//! rooms (`join`), acks by idempotency key (at-least-once), `reconnect` hints and resume
//! points: each chat message carries its place in its room (`seq`), the client remembers the
//! last one it saw per joined room, and a rejoin after a reconnect asks the server for what
//! came after it; a server that no longer has all of it says so, and the client reports the
//! gap. The seed's dialect has none of this: what is said while a client is away is lost to it.

mod inbound;
mod scan;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use web_time::Instant;

use md5::{Digest, Md5};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use self::inbound::{Inbound, Str};
use crate::message::{Body, Delivery, Json, Message, OutgoingMessage, SendId};
use crate::protocol::{
    refuse_retain, Context, EncodeError, Protocol, ProtocolError, ProtocolEvent, SendInfo,
};
use crate::text::Text;
use crate::transport::Frame;

/// Which livechat a server speaks, as it shows in its `auth1` challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// Exactly the seed's protocol: ready once `auth2` is written, no confirmation, no rooms
    /// beyond the home room named in `auth2`, no acks (every message ends `Sent`:
    /// at-most-once), no reconnect hints.
    Seed,
    /// The seed plus im's frames (`"dialect":"im"` in `auth1`'s result): ready on `auth_ok`,
    /// `auth_fail` is fatal, `join`/`leave` rooms, `chat` acked by idempotency key
    /// (at-least-once; the server deduplicates), `reconnect` with a not-before hint (R8).
    Im,
}

/// The livechat protocol for one user in one home room.
pub struct LiveChat {
    room_id: u64,
    user_id: u64,
    key: String,
    /// What this connection's server speaks, from its `auth1`; `None` before it.
    dialect: Option<Dialect>,
    /// Idempotency key → send ids of the transmissions awaiting `ack` on this connection, oldest
    /// first: the server acks a key once per receipt, so two sends under one key (the user's
    /// own) get two acks, in order. Bounded by the outbox times its retries, cleared on every new
    /// connection. Ordered, not hashed: a handful of entries, looked up once per ack, cost less
    /// than SipHash does.
    awaiting_ack: BTreeMap<String, VecDeque<SendId>>,
    /// Joined room → where this client is in it (im's dialect): kept across connections, so a
    /// rejoin resumes; one entry per subscribed room.
    rooms: HashMap<String, ResumePoint>,
}

/// The last message of a room this client saw: the server's history (`epoch`, which a server
/// restart changes) and the message's place in it.
#[derive(Debug, Default)]
struct ResumePoint {
    epoch: Option<String>,
    seq: Option<u64>,
}

impl LiveChat {
    pub fn new(room_id: u64, user_id: u64, key: impl Into<String>) -> Self {
        LiveChat {
            room_id,
            user_id,
            key: key.into(),
            dialect: None,
            awaiting_ack: BTreeMap::new(),
            rooms: HashMap::new(),
        }
    }

    /// The dialect of the current connection's server; `None` until its `auth1` arrived.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect
    }

    /// The room named in `auth2` and the channel of messages that name no room.
    pub fn home_room(&self) -> String {
        format!("livechat_{}", self.room_id)
    }

    /// `authCode = md5(seed + key)`, lowercase hex.
    pub fn auth_code(seed: &str, key: &str) -> String {
        let mut md5 = Md5::new();
        md5.update(seed.as_bytes());
        md5.update(key.as_bytes());
        format!("{:x}", md5.finalize())
    }
}

impl fmt::Debug for LiveChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveChat")
            .field("room_id", &self.room_id)
            .field("user_id", &self.user_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Whether the one-pass envelope decoder answers as serde does on `text`: it may decline, but
/// accepting what serde refuses, or decoding differently, is a bug. For the fuzzer.
#[cfg(feature = "sim")]
#[doc(hidden)]
pub fn envelope_decoders_agree(text: &str, max_depth: usize) -> bool {
    match scan::envelope(text, max_depth) {
        None => true,
        Some(fast) => Inbound::parse_with_serde(text, max_depth).is_ok_and(|slow| slow == fast),
    }
}

/// Decode `text`, whose JSON may nest at most `max_depth` deep, into `out` (default on entry;
/// after an error it holds nothing of meaning): the one-pass scanner first, serde for
/// anything it declines (and to explain errors).
fn decode_envelope<'a>(
    text: &'a str,
    max_depth: usize,
    out: &mut Inbound<'a>,
) -> Result<(), ProtocolError> {
    if scan::envelope_into(text, max_depth, out).is_some() {
        return Ok(());
    }
    *out = Inbound::parse_with_serde(text, max_depth)?;
    Ok(())
}

/// An id as text: a JSON string unquoted, anything else as written.
fn id_text(raw: &str) -> String {
    serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned())
}

fn text_or(v: Option<Str<'_>>, default: &str) -> String {
    v.map(Str::into_owned).unwrap_or_else(|| default.to_owned())
}

impl Protocol for LiveChat {
    fn name(&self) -> &'static str {
        "livechat"
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {
        // The server speaks first (auth1), and may be another server than last time: a new
        // connection owes no acks and has no dialect yet.
        self.awaiting_ack.clear();
        self.dialect = None;
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let frame = match frame {
            Frame::Text(t) => t,
            Frame::Binary(_) => return Err(ProtocolError::UnexpectedFrame("binary")),
            _ => return Ok(()),
        };
        let text = frame.as_str();
        let mut msg = Inbound::default();
        decode_envelope(text, cx.limits.max_json_depth, &mut msg)?;
        let Inbound {
            cmd,
            msg_id,
            room,
            result,
        } = msg;
        match cmd.as_deref() {
            Some("auth1") => {
                let seed = result
                    .seed
                    .ok_or_else(|| ProtocolError::Malformed("auth1 without result.seed".into()))?;
                // The id goes back as the server wrote it (a number stays a number).
                let id = msg_id.map(|raw| RawValue::from_string(raw.to_owned()));
                cx.transmit(text_frame(json!({
                    "cmd": "auth2",
                    "msg_id": id.transpose().map_err(|e| ProtocolError::Malformed(e.to_string()))?,
                    "authCode": Self::auth_code(&seed, &self.key),
                    "room_id": self.home_room(),
                    "userId": self.user_id,
                })));
                let dialect = announced_dialect(text);
                self.dialect = Some(dialect);
                if dialect == Dialect::Seed {
                    // The seed's client is connected once it has answered the challenge: no
                    // confirmation will come.
                    cx.emit(ProtocolEvent::Ready);
                }
            }
            Some("auth_ok") => cx.emit(ProtocolEvent::Ready),
            Some("auth_fail") => cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(text_or(
                result.reason,
                "rejected",
            )))),
            Some("wd_heartbeat") => cx.emit(ProtocolEvent::Pong),
            Some("conn_close") => cx.emit(ProtocolEvent::Kicked {
                reason: text_or(result.reason, "logged in elsewhere"),
            }),
            Some("ack") => {
                let key = msg_id
                    .map(id_text)
                    .ok_or_else(|| ProtocolError::Malformed("ack without msg_id".into()))?;
                // An ack for a key we no longer wait for is a duplicate: harmless.
                if let Some(ids) = self.awaiting_ack.get_mut(&key) {
                    if let Some(id) = ids.pop_front() {
                        cx.emit(ProtocolEvent::Acked(id));
                    }
                    if ids.is_empty() {
                        self.awaiting_ack.remove(&key);
                    }
                }
            }
            Some("joined") => {
                let room =
                    room.ok_or_else(|| ProtocolError::Malformed("joined without room".into()))?;
                self.on_joined(cx, &room, text);
                cx.emit(ProtocolEvent::Subscribed(room.into_owned()));
            }
            Some("join_fail") => cx.emit(ProtocolEvent::SubscribeRefused {
                channel: text_or(room, ""),
                reason: text_or(result.reason, ""),
            }),
            Some("reconnect") => cx.emit(ProtocolEvent::Reconnect {
                reason: text_or(result.reason, "server asked"),
                after: result.after_ms.map(Duration::from_millis),
            }),
            Some("error") => cx.emit(ProtocolEvent::Error(ProtocolError::Server(text_or(
                result.reason,
                "",
            )))),
            cmd => match result.message.filter(|m| *m != "null") {
                // The seed's rule: anything else carrying result.message is a chat message.
                Some(raw) => {
                    // Channel and body are parts of the frame, not copies; the body takes the
                    // frame's buffer over (the frame is not needed after it).
                    let channel = match result.room.or(room) {
                        Some(Str(Cow::Borrowed(room))) => frame.slice_ref(room),
                        Some(Str(Cow::Owned(room))) => room.into(),
                        None => self.home_room().into(),
                    };
                    if let Some(seq) = result.seq {
                        // The resume point moves with what was handed over, never back.
                        if let Some(point) = self.rooms.get_mut(channel.as_str()) {
                            point.seq = point.seq.max(Some(seq));
                        }
                    }
                    let id = result.msg_id.or(msg_id).map(id_text);
                    let from = result.from.map(id_text);
                    let body = frame
                        .range_of(raw)
                        .and_then(|r| Json::from_checked_part(frame, r));
                    let body = body.ok_or_else(|| {
                        ProtocolError::Malformed("message outside its frame".into())
                    })?;
                    let mut message = Message::new(channel, Body::Json(body));
                    message.id = id;
                    message.from = from;
                    cx.emit(ProtocolEvent::Message(message));
                }
                None => {
                    return Err(ProtocolError::Violation(match cmd {
                        Some(cmd) => format!("unknown command {:?}", truncate(cmd)),
                        None => "frame without cmd".into(),
                    }))
                }
            },
        }
        Ok(())
    }

    fn validate(&self, msg: &OutgoingMessage) -> Result<(), EncodeError> {
        refuse_retain("livechat", msg)?;
        if msg.delivery == Some(Delivery::AtLeastOnce) && self.dialect == Some(Dialect::Seed) {
            return Err(SEED_HAS_NO_ACKS);
        }
        match msg.body {
            Body::Binary(_) => Err(EncodeError::UnsupportedBody {
                protocol: "livechat",
                body: "binary",
            }),
            _ => Ok(()),
        }
    }

    transmit_through_codec!();
}

/// The frames the [`Protocol`] methods transmit: the vendor's codec, callable on its own.
impl LiveChat {
    /// The frame [`Protocol::on_heartbeat`] transmits.
    pub fn heartbeat_frame(&mut self, _now: Instant) -> Frame {
        Frame::Text(r#"{"cmd":"wd_heartbeat"}"#.into())
    }

    /// The frame [`Protocol::on_send`] transmits for `msg`, and whether the server will ack it.
    pub fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(Delivery, Frame), EncodeError> {
        self.validate(msg)?;
        // The im dialect acks every chat frame; asking it for less changes nothing on the wire,
        // but the message is then `Sent`, not held for the ack.
        let acked = self.dialect == Some(Dialect::Im) && msg.delivery != Some(Delivery::AtMostOnce);
        // Written directly: a JSON body is already JSON text (valid by construction), so it is
        // spliced in rather than parsed into a `Value` and printed again.
        let mut frame =
            Vec::with_capacity(48 + send.key.len() + msg.channel.len() + msg.body.len());
        frame.extend_from_slice(br#"{"cmd":"chat","msg_id":"#);
        json_string(&mut frame, send.key)?;
        frame.extend_from_slice(br#","room":"#);
        json_string(&mut frame, &msg.channel)?;
        frame.extend_from_slice(br#","message":"#);
        match &msg.body {
            Body::Json(json) => frame.extend_from_slice(json.get().as_bytes()),
            Body::Text(t) => json_string(&mut frame, t)?,
            _ => unreachable!("validated above"),
        }
        frame.push(b'}');
        let frame = Frame::Text(
            Text::from_utf8(frame.into()).map_err(|e| EncodeError::Other(e.to_string()))?,
        );
        if !acked {
            return Ok((Delivery::AtMostOnce, frame));
        }
        self.awaiting_ack
            .entry(send.key.to_owned())
            .or_default()
            .push_back(send.id);
        Ok((Delivery::AtLeastOnce, frame))
    }

    /// The frame [`Protocol::on_subscribe`] transmits, if the vendor subscribes at all: im's
    /// `join`, with the room's resume point when this client was in it before.
    pub fn encode_subscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        // The seed has no rooms but the home room named in auth2: the server decides.
        if self.dialect != Some(Dialect::Im) {
            return Ok(None);
        }
        let point = self.rooms.entry(channel.to_owned()).or_default();
        let join = match point {
            ResumePoint {
                epoch: Some(epoch),
                seq: Some(seq),
            } => json!({"cmd": "join", "room": channel, "resume": {"epoch": epoch, "seq": seq}}),
            _ => json!({"cmd": "join", "room": channel}),
        };
        Ok(Some(text_frame(join)))
    }

    /// The frame [`Protocol::on_unsubscribe`] transmits, if any.
    pub fn encode_unsubscribe(&mut self, channel: &str) -> Result<Option<Frame>, EncodeError> {
        self.rooms.remove(channel);
        Ok((self.dialect == Some(Dialect::Im))
            .then(|| text_frame(json!({"cmd": "leave", "room": channel}))))
    }

    /// `joined`: the server's history of the room (`epoch`, its last `seq`), and whether a
    /// resume asked for could be served in full. Read once per join, so plain serde.
    fn on_joined(&mut self, cx: &mut Context<'_>, room: &str, text: &str) {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Joined {
            result: JoinedResult,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct JoinedResult {
            epoch: Option<String>,
            seq: Option<u64>,
            resumed: Option<bool>,
            reason: Option<String>,
        }
        let Joined { result } = serde_json::from_str(text).unwrap_or_default();
        let Some(point) = self.rooms.get_mut(room) else {
            return;
        };
        if result.resumed == Some(false) {
            cx.emit(ProtocolEvent::Gap {
                reason: format!(
                    "livechat room {room:?}: {}",
                    result.reason.as_deref().unwrap_or(
                        "the server no longer has every message since the last one seen"
                    )
                ),
            });
        }
        let same_history = point.epoch.is_some() && point.epoch == result.epoch;
        if !same_history {
            // A first join, or another history (the server restarted): this client starts at
            // the room's present. What a different history held while it was away is not
            // coming, and a client that had a point in the old one says so.
            if point.seq.is_some() && result.epoch.is_some() && result.resumed.is_none() {
                cx.emit(ProtocolEvent::Gap {
                    reason: format!(
                        "livechat room {room:?}: the server's history is not the one this \
                         client was in (it restarted)"
                    ),
                });
            }
            point.epoch = result.epoch;
            point.seq = result.seq;
        }
        // The same history: the point moves as the replayed messages arrive, so a link lost
        // during the replay resumes from the last one handed over.
    }
}

const SEED_HAS_NO_ACKS: EncodeError = EncodeError::Unsupported {
    protocol: "livechat",
    what: "acknowledge messages: this server speaks the seed's dialect (at-most-once)",
};

/// The dialect an `auth1` frame announces: `result.dialect == "im"`, else the seed's. Read
/// once per connection, so plain serde rather than the chat path's scanner.
fn announced_dialect(auth1: &str) -> Dialect {
    #[derive(serde::Deserialize)]
    struct Auth1<'a> {
        #[serde(borrow, default)]
        result: Option<Auth1Result<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Auth1Result<'a> {
        #[serde(borrow, default)]
        dialect: Option<Cow<'a, str>>,
    }
    match serde_json::from_str::<Auth1<'_>>(auth1) {
        Ok(Auth1 {
            result: Some(Auth1Result {
                dialect: Some(d), ..
            }),
        }) if d == "im" => Dialect::Im,
        _ => Dialect::Seed,
    }
}

/// `s` as a JSON string literal, escaped.
fn json_string(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    serde_json::to_writer(out, s).map_err(|e| EncodeError::Other(e.to_string()))
}

fn text_frame(v: Value) -> Frame {
    Frame::Text(v.to_string().into())
}

/// Unknown commands are echoed in errors; a hostile server must not make that a megabyte.
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
