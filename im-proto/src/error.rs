//! What can be wrong with a frame from the server, or with a message on its way to one: the
//! errors a protocol reports, shared by the core's events and the protocol trait.

/// Something wrong with what the server sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8,
    #[error("unexpected {0} frame")]
    UnexpectedFrame(&'static str),
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("JSON nested deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("protocol violation: {0}")]
    Violation(String),
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("server error: {0}")]
    Server(String),
}

/// A message or subscription the protocol cannot put on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{protocol} cannot carry a {body} body")]
    UnsupportedBody {
        protocol: &'static str,
        body: &'static str,
    },
    #[error("{protocol} cannot {what}")]
    Unsupported {
        protocol: &'static str,
        what: &'static str,
    },
    /// An id space ran out (every MQTT packet id is awaiting its ack): the message or
    /// subscription is refused rather than searched for without end.
    #[error("{protocol} has run out of {what}")]
    Exhausted {
        protocol: &'static str,
        what: &'static str,
    },
    #[error("invalid channel name {0:?}")]
    InvalidChannel(String),
    #[error("encoding failed: {0}")]
    Other(String),
}

/// Why a connection could not be opened, or broke: what the driver's transport reported, typed so
/// that an application can tell a refused certificate from a refused port without reading text.
/// (A server that answers the upgrade with an HTTP status is not a failure but an answer:
/// `Cause::Refused { status }`.)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {detail}")]
    Dns { host: String, detail: String },
    /// Nothing listens on that port (TCP RST to the SYN).
    #[error("connection refused")]
    ConnectionRefused,
    /// The operating system gave up on the connection (`ETIMEDOUT`); the client's own deadline
    /// is `Cause::ConnectTimeout`.
    #[error("timed out")]
    TimedOut,
    /// The TLS handshake or session failed.
    #[error("TLS: {0}")]
    Tls(TlsError),
    /// The peer broke the WebSocket protocol (a bad handshake answer, a bad frame).
    #[error("WebSocket protocol: {0}")]
    WebSocket(String),
    /// The endpoint or a request header cannot make a valid upgrade request (the header's
    /// value is never included: it may be a credential).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A write stalled longer than the driver allows.
    #[error("write stalled for longer than {0:?}")]
    WriteStalled(std::time::Duration),
    /// Any other I/O failure (reset, aborted, unreachable network, …).
    #[error("I/O error ({kind:?}): {detail}")]
    Io {
        kind: std::io::ErrorKind,
        detail: String,
    },
    /// A failure a custom driver describes in its own words.
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    /// A socket's I/O error, by its kind: what any driver can say without knowing more (im-driver
    /// first tells a failed lookup and a TLS failure apart).
    pub fn from_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => TransportError::ConnectionRefused,
            std::io::ErrorKind::TimedOut => TransportError::TimedOut,
            kind => TransportError::Io {
                kind,
                detail: e.to_string(),
            },
        }
    }
}

/// What went wrong in TLS.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate was refused.
    #[error("certificate refused: {0}")]
    Certificate(CertificateError),
    /// `wss://` without a TLS configuration (no default one in this build).
    #[error("no TLS configuration: {0}")]
    NotConfigured(String),
    /// Any other TLS failure (an alert from the peer, no common cipher suite, …).
    #[error("{0}")]
    Other(String),
}

/// Why the server's certificate was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    #[error("issued by an unknown authority")]
    UnknownIssuer,
    #[error("not valid for the name connected to")]
    NotValidForName,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotValidYet,
    #[error("revoked")]
    Revoked,
    #[error("bad signature")]
    BadSignature,
    #[error("{0}")]
    Other(String),
}
