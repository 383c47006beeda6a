//! The vendor-neutral message: what business code sends and receives, whatever the wire.

use std::fmt;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
use serde_json::value::RawValue;

use bytes::Bytes;

use crate::text::Text;

/// Identifies one accepted [`Client::send`](crate::Client::send) until its fate is reported
/// (`Sent`, `Acked` or `Undelivered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

impl fmt::Display for SendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send#{}", self.0)
    }
}

/// A JSON document kept as its text, so it is parsed once, by whoever wants a type
/// ([`Body::decode`]). Valid JSON by construction; a received one shares the frame's buffer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Json(Text);

impl Json {
    /// Serialize `value`.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Json, serde_json::Error> {
        Ok(Json(serde_json::to_string(value)?.into()))
    }

    /// Check that `text` is one JSON document and keep it as written.
    pub fn parse(text: impl Into<Text>) -> Result<Json, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<IgnoredAny>(&text)?;
        Ok(Json(text))
    }

    /// A document a parser already checked, found inside `frame`: shares `frame`'s buffer when
    /// `raw` was borrowed from it, copies otherwise. For decoders, including your own.
    pub fn from_raw_in(frame: &Text, raw: &RawValue) -> Json {
        Json(frame.slice_ref(raw.get()))
    }

    /// The document at `range` of `frame`, which a decoder of this crate checked, taking the
    /// frame's buffer rather than sharing it ([`Text::into_slice`]); `None` if `range` is not a
    /// part of `frame`.
    #[cfg(any(feature = "livechat", feature = "socketio"))]
    pub(crate) fn from_checked_part(frame: Text, range: std::ops::Range<usize>) -> Option<Json> {
        frame.into_slice(range).map(Json)
    }

    /// The document's text.
    pub fn get(&self) -> &str {
        &self.0
    }

    pub fn as_text(&self) -> &Text {
        &self.0
    }
}

impl From<Box<RawValue>> for Json {
    fn from(raw: Box<RawValue>) -> Json {
        Json(String::from(Box::<str>::from(raw)).into())
    }
}

impl fmt::Debug for Json {
    // User data: the shape is what a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json({} bytes)", self.0.len())
    }
}

/// A message body. Each protocol maps the kinds it can carry and refuses the others with a
/// typed error (a JSON-only vendor refuses `Binary`).
#[derive(Clone)]
#[non_exhaustive]
pub enum Body {
    /// A JSON document, kept as its text so it is parsed once, by whoever wants a type.
    Json(Json),
    /// Text, shared with the frame it arrived in (see [`Text`]).
    Text(Text),
    /// Bytes, shared with the frame they arrived in: what the binary vendors (MQTT, NATS)
    /// deliver, text or not ([`Body::as_text`] tells).
    Binary(Bytes),
}

impl Body {
    /// Serialize `value` as a JSON body.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Body, serde_json::Error> {
        Ok(Body::Json(Json::from_value(value)?))
    }

    /// Decode the body into `T`: JSON bodies directly, text bodies as JSON text, bytes as JSON
    /// (their UTF-8 checked by the parser where it reads strings, as `serde_json::from_slice`
    /// does).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Body::Json(raw) => serde_json::from_str(raw.get()),
            Body::Text(s) => serde_json::from_str(s),
            Body::Binary(b) => serde_json::from_slice(b),
        }
    }

    /// The body as text when it is text or JSON, or bytes that are UTF-8. The binary vendors
    /// (MQTT, NATS) deliver their payloads as [`Body::Binary`]: whether a payload is text is
    /// checked here, when asked, not on arrival of every message (a consumer that decodes it
    /// with [`decode`](Self::decode) never pays for the check).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Body::Json(raw) => Some(raw.get()),
            Body::Text(s) => Some(s.as_str()),
            Body::Binary(b) => std::str::from_utf8(b).ok(),
        }
    }

    /// The body's bytes, whatever its kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Json(raw) => raw.get().as_bytes(),
            Body::Text(s) => s.as_bytes(),
            Body::Binary(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for Body {
    /// Same kind and same bytes (JSON compares as written, not as parsed).
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for Body {
    // Bodies are user data; the shape is what a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Body::Json(_) => "Json",
            Body::Text(_) => "Text",
            Body::Binary(_) => "Binary",
        };
        write!(f, "{kind}({} bytes)", self.len())
    }
}

/// A message that arrived for the user.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Room, topic, subject or event name, as the vendor calls it.
    pub channel: Text,
    pub body: Body,
    /// The server's id for the message, where the vendor has one (for deduplication).
    pub id: Option<String>,
    /// Who sent it, where the vendor says.
    pub from: Option<String>,
}

impl Message {
    pub fn new(channel: impl Into<Text>, body: Body) -> Self {
        Message {
            channel: channel.into(),
            body,
            id: None,
            from: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn with_from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }
}

/// What a sender asks of the server for one message.
///
/// A vendor that cannot give what is asked says so: `send` refuses the message with
/// [`EncodeError::Unsupported`](crate::EncodeError::Unsupported) where the protocol knows in
/// advance, or it ends `Undelivered` with that error, never written, where the protocol learns
/// it only from the server (livechat's dialect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// Written once, never retransmitted; the fate is `Sent` as soon as it is handed to the
    /// transport (Socket.IO plain emits, MQTT QoS 0, NATS, the seed's livechat).
    AtMostOnce,
    /// Held until the server acknowledges it (`Acked`): retransmitted with the same idempotency
    /// key after a reconnect (Q3) and after an ack timeout while retries remain, then reported
    /// `Undelivered` (Socket.IO acked emits, MQTT QoS 1, livechat's im dialect).
    AtLeastOnce,
}

/// A message the user wants delivered.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OutgoingMessage {
    pub channel: String,
    pub body: Body,
    /// Idempotency key carried on every (re)transmission so a server can deduplicate (Q3).
    /// When `None`, the client assigns `"<client tag>-<send id>"`.
    pub key: Option<String>,
    /// How long the message may wait for a connection before it is reported undelivered (Q1).
    /// When `None`, the config's default TTL applies.
    pub ttl: Option<Duration>,
    /// The delivery asked for; `None` = the protocol's default (see each vendor's docs).
    pub delivery: Option<Delivery>,
    /// Ask the broker to keep the message for later subscribers (MQTT's retain flag). Vendors
    /// without such a thing refuse a retained message at `send`.
    pub retain: bool,
}

impl OutgoingMessage {
    pub fn new(channel: impl Into<String>, body: Body) -> Self {
        OutgoingMessage {
            channel: channel.into(),
            body,
            key: None,
            ttl: None,
            delivery: None,
            retain: false,
        }
    }

    pub fn text(channel: impl Into<String>, text: impl Into<Text>) -> Self {
        Self::new(channel, Body::Text(text.into()))
    }

    pub fn json<T: Serialize + ?Sized>(
        channel: impl Into<String>,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(channel, Body::json(value)?))
    }

    pub fn binary(channel: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self::new(channel, Body::Binary(bytes.into()))
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Ask for this delivery instead of the protocol's default (see [`Delivery`]).
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Ask the broker to retain the message (MQTT).
    pub fn retained(mut self) -> Self {
        self.retain = true;
        self
    }

    /// Bytes this message holds in the outbox (counted against `Limits::outbox_bytes`).
    pub fn size(&self) -> usize {
        self.channel.len() + self.body.len() + self.key.as_ref().map_or(0, String::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Chat {
        text: String,
    }

    #[test]
    fn json_body_round_trips_a_type() {
        let chat = Chat { text: "hi".into() };
        let body = Body::json(&chat).unwrap();
        assert_eq!(body.as_text(), Some(r#"{"text":"hi"}"#));
        assert_eq!(body.decode::<Chat>().unwrap(), chat);
    }

    #[test]
    fn decode_reports_a_typed_error_on_mismatch() {
        let body = Body::Text("not json".into());
        assert!(body.decode::<Chat>().is_err());
    }
}
