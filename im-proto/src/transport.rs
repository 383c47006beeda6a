//! What the driver tells the core about the one socket it owns, and what travels over it.

use std::fmt;

use bytes::Bytes;

use crate::text::Text;

/// Generation number of a transport connection.
///
/// Every `Connect` output carries a fresh one; inputs that name any other generation are stale and
/// ignored. Identity, not timing, decides which socket an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(generation: u64) -> Self {
        ConnId(generation)
    }

    /// The generation as a number (1, 2, … in the order the client asked for connections).
    pub fn get(self) -> u64 {
        self.0
    }

    /// A connection id the client never gave out, or an old one: for tests that feed the core
    /// stale events. Not for drivers, which only echo the ids of `Output::Connect`.
    #[doc(hidden)]
    pub fn from_raw(generation: u64) -> Self {
        ConnId(generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// One WebSocket message (or control frame) in either direction. The kinds are RFC 6455's, so
/// the enum is exhaustive: drivers match it completely.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// Shared, not copied: decoders hand out slices of it (see [`Text`]).
    Text(Text),
    /// Shared, not copied, like text: the bytes the WebSocket library read, which a decoder
    /// slices a message's body out of.
    Binary(Bytes),
    /// WebSocket ping. Inbound pings are answered by the driver's WebSocket library; the core only
    /// counts them as proof of liveness (H3).
    Ping(Vec<u8>),
    /// WebSocket pong, the answer to a [`HeartbeatMode::WebSocketPing`](crate::HeartbeatMode) probe.
    Pong(Vec<u8>),
}

impl Frame {
    /// Payload length in bytes, the figure the size limits are checked against.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => b.len(),
            Frame::Ping(b) | Frame::Pong(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Frame {
    // Frames can carry credentials (auth frames) and megabytes of payload: print the shape only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Frame::Text(_) => "Text",
            Frame::Binary(_) => "Binary",
            Frame::Ping(_) => "Ping",
            Frame::Pong(_) => "Pong",
        };
        write!(f, "{kind}({} bytes)", self.len())
    }
}

/// What happened to the transport the core asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// The WebSocket handshake completed.
    Opened,
    /// A frame arrived.
    Frame(Frame),
    /// The peer closed the connection (or the stream ended).
    Closed { code: Option<u16>, reason: String },
    /// The connection could not be opened, or broke.
    Failed(crate::error::TransportError),
    /// The server answered the WebSocket upgrade with this HTTP status instead of switching
    /// protocols (401/403: the credentials were refused; 503: overloaded).
    Refused { status: u16 },
    /// A message arrived that the transport could not turn into a [`Frame`] (a text frame with
    /// invalid UTF-8). Reported to the user; the connection carries on, and it counts as
    /// inbound traffic (H3).
    Rejected(crate::error::ProtocolError),
}

/// A server address the driver can open, as a WebSocket URL.
///
/// `Debug` and `Display` hide the query string, where tokens tend to live.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

impl Endpoint {
    pub fn new(url: impl Into<String>) -> Self {
        Endpoint(url.into())
    }

    /// The full URL, query included: for opening the socket, not for logging.
    pub fn url(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> &str {
        self.0.split('?').next().unwrap_or_default()
    }
}

impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Endpoint::new(url)
    }
}

impl From<String> for Endpoint {
    fn from(url: String) -> Self {
        Endpoint::new(url)
    }
}

impl From<&String> for Endpoint {
    fn from(url: &String) -> Self {
        Endpoint::new(url.as_str())
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(endpoint: &Endpoint) -> Self {
        endpoint.clone()
    }
}

#[cfg(feature = "url")]
impl From<url::Url> for Endpoint {
    fn from(url: url::Url) -> Self {
        Endpoint(url.into())
    }
}

#[cfg(feature = "url")]
impl From<&url::Url> for Endpoint {
    fn from(url: &url::Url) -> Self {
        Endpoint::new(url.as_str())
    }
}

impl fmt::Display for Endpoint {
    /// The URL without what may be a credential: `user:password@` and the query string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.redacted();
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                match authority.rsplit_once('@') {
                    Some((_, host)) => write!(f, "{scheme}://…@{host}{path}")?,
                    None => f.write_str(url)?,
                }
            }
            None => f.write_str(url)?,
        }
        if self.0.contains('?') {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hides_query_in_debug_and_display() {
        let e = Endpoint::new("wss://h/ws?token=s3cret");
        assert_eq!(format!("{e}"), "wss://h/ws?…");
        let with_user = Endpoint::new("wss://user:s3cret@h:443/ws");
        assert_eq!(format!("{with_user}"), "wss://…@h:443/ws");
        assert!(!format!("{with_user:?}").contains("s3cret"));
        assert!(!format!("{e:?}").contains("s3cret"));
        assert_eq!(e.url(), "wss://h/ws?token=s3cret");
    }

    #[test]
    fn endpoints_come_from_every_kind_of_url() {
        let owned = String::from("ws://h:1/ws");
        let from: [Endpoint; 3] = ["ws://h:1/ws".into(), owned.clone().into(), (&owned).into()];
        assert!(from.iter().all(|e| e.url() == "ws://h:1/ws"));
        #[cfg(feature = "url")]
        {
            let url = url::Url::parse("wss://h/ws?token=t").unwrap();
            assert_eq!(Endpoint::from(&url).url(), "wss://h/ws?token=t");
            assert_eq!(Endpoint::from(url).url(), "wss://h/ws?token=t");
        }
    }

    #[test]
    fn frame_debug_shows_size_not_content() {
        let f = Frame::Text("password=hunter2".into());
        assert_eq!(format!("{f:?}"), "Text(16 bytes)");
    }
}
