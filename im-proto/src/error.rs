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
