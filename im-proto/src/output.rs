//! What the core tells the driver to do, and what it tells the user.

use std::time::Duration;

use web_time::Instant;

use crate::error::{EncodeError, ProtocolError, TransportError};
use crate::message::{Message, OutgoingMessage, SendId};
use crate::transport::{ConnId, Endpoint, Frame};

/// One instruction for the driver, drained with [`Client::poll_output`](crate::Client::poll_output)
/// until [`Output::Timeout`], in the order the client made them.
///
/// Exhaustive on purpose: a driver must handle every instruction, and a new one is a breaking
/// change that every driver has to implement.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open a WebSocket to `endpoint` and report what happens under `conn`.
    Connect {
        conn: ConnId,
        endpoint: Endpoint,
        /// WebSocket subprotocols to offer.
        subprotocols: &'static [&'static str],
    },
    /// Write `frame` on connection `conn`.
    Transmit { conn: ConnId, frame: Frame },
    /// Close connection `conn` with this WebSocket close code and forget it; no further event
    /// about it is needed.
    Disconnect {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// Hand this to the user.
    Event(Event),
    /// The drain is over: nothing more to do until this instant, when
    /// [`handle_timeout`](crate::Client::handle_timeout) is due (or until an input comes
    /// first). `None`: nothing is scheduled (before `connect`, and for good after
    /// [`Event::Closed`]).
    Timeout(Option<Instant>),
}

/// Something the user may want to know. Events say what happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; subscriptions are being restored and the outbox flushed.
    Connected {
        endpoint: Endpoint,
        /// The server restored this client's session, and what was sent to it while it was
        /// away follows (an MQTT persistent session, Socket.IO's connection state recovery).
        recovered: bool,
    },
    /// A connection that had been `Ready` was lost.
    Disconnected {
        cause: Cause,
    },
    /// The next attempt is scheduled (`attempt` counts from 1 after the last healthy connection);
    /// `cause` says why the previous connection or attempt ended (a refused connect, a rejected
    /// certificate, a dead link, …).
    Reconnecting {
        attempt: u32,
        delay: Duration,
        cause: Cause,
    },
    Message(Message),
    /// A heartbeat was answered or a server ping received; `rtt` when we asked (H3).
    Heartbeat {
        rtt: Option<Duration>,
    },
    /// The message was written to the transport, and no ack will come for it (at-most-once:
    /// a plain Socket.IO emit, MQTT QoS 0, NATS, the seed's livechat).
    Sent {
        id: SendId,
    },
    /// The server acknowledged the message (protocols with acks).
    Acked {
        id: SendId,
    },
    /// The message will never be sent; it is handed back (Q1 TTL, Q4 close).
    Undelivered {
        id: SendId,
        /// Boxed: rare, and every event is as large as the largest variant.
        message: Box<OutgoingMessage>,
        reason: Undelivered,
        /// True when it went out at least once without an ack: the server may have it.
        maybe_delivered: bool,
    },
    /// Q5: a message a durable store kept from an earlier run is held again under its old id
    /// ([`Client::restore`](crate::Client::restore)); its fate follows as for any send.
    Restored {
        id: SendId,
        message: Box<OutgoingMessage>,
    },
    Subscribed {
        channel: String,
    },
    SubscribeRefused {
        channel: String,
        reason: String,
    },
    /// The server ended this session for good (logged in elsewhere). `Closed` follows.
    Kicked {
        reason: String,
    },
    /// R3: `attempts` consecutive attempts failed. `Closed` follows.
    GaveUp {
        attempts: u32,
    },
    /// Something went wrong that the client survived (bad frame, refused message).
    Error(ReportedError),
    /// The terminal event: nothing follows.
    Closed {
        reason: CloseReason,
    },
}

/// Why a connection ended or an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The peer closed it.
    ClosedByPeer {
        code: Option<u16>,
        reason: String,
    },
    /// The transport failed (typed: DNS, refused, TLS with the certificate's fault, …).
    Transport(TransportError),
    /// The server refused the WebSocket upgrade with this HTTP status (401/403: credentials;
    /// see `Config::on_auth_refusal`).
    Refused {
        status: u16,
    },
    /// H2: no inbound traffic within the heartbeat deadline.
    DeadLink,
    ConnectTimeout,
    HandshakeTimeout,
    /// The server asked for a reconnect (R8).
    ServerRequested(String),
    /// The user called `network_online` or switched vendor.
    Switched,
}

/// Why the client closed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Client::close`](crate::Client::close).
    User,
    Kicked {
        reason: String,
    },
    GaveUp {
        attempts: u32,
    },
    Fatal(ProtocolError),
    /// The server refused the credentials (HTTP 401/403 to the upgrade) and the configuration
    /// says not to retry (`OnAuthRefusal::Close`).
    Refused {
        status: u16,
    },
    /// The application stopped reading events while they kept coming (the driver's bound was
    /// reached).
    EventsOverflow {
        pending: usize,
    },
}

/// Why a message was handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undelivered {
    /// Its TTL ran out while waiting for a connection.
    Expired,
    /// The client closed.
    Closed,
    /// The protocol could not encode it.
    Encode(EncodeError),
    /// The server did not acknowledge it within the ack timeout, on the first transmission nor
    /// on any retry (`Config::ack_retries`). It may have arrived: `maybe_delivered` is true.
    AckTimeout,
    /// Q5: restored from a durable store, it is over this client's present limits (the
    /// message size, or the outbox's count or bytes, set lower than when it was accepted).
    OverLimits,
    /// Q6: the server refused it for good, for `reason` (a JetStream stream that does not
    /// take it). The refusal answers its last transmission: `maybe_delivered` is true only
    /// when an earlier one went unanswered (an ack retry, a reconnect, a restore).
    Refused { reason: String },
}

/// An error the client survived, reported as an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportedError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("cannot encode subscription to {channel:?}: {error}")]
    Subscribe { channel: String, error: EncodeError },
    /// R8: the server asked not to be contacted for `asked`; the client waits `applied`
    /// (`Config::max_server_delay`).
    #[error("the server asked for a reconnect after {asked:?}; capped at {applied:?}")]
    ServerHintCapped { asked: Duration, applied: Duration },
    /// Inbound resume could not close a gap: messages sent to this client while it was away
    /// may be missing (the server kept no session for it).
    #[error("messages sent while the client was away may be missing: {reason}")]
    Gap { reason: String },
}

/// `send` refused the message; nothing was queued.
#[derive(Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("the outbox is full ({messages} messages, {bytes} bytes held)")]
    OutboxFull {
        messages: usize,
        bytes: usize,
        message: Box<OutgoingMessage>,
    },
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the protocol cannot send this message: {0}")]
    Encode(EncodeError),
    #[error("the client is closed")]
    Closed,
    /// Q5: the client's durable store could not keep the message (a full disk, say): it was
    /// not accepted and will not be sent.
    #[error("the durable store could not keep the message: {detail}")]
    NotStored { detail: String },
}

/// [`Client::restore`](crate::Client::restore) was misused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Q5: restored messages come back in id order, before any new send: `id` is not above
    /// every id this client has given out.
    #[error("{id} restored out of order: the next id is {next}")]
    OutOfOrder { id: SendId, next: SendId },
    /// Ids above 2^63 are refused: the sends after a restored id need room to be numbered
    /// (and a store's integers are 63 bits).
    #[error("{id} is out of range: restored ids are at most 2^63 - 1")]
    OutOfRange { id: SendId },
    /// The client is closed: nothing follows `Closed` (R4), so the message stays with the
    /// caller (and in its store, for the next run).
    #[error("the client is closed")]
    Closed,
}

/// `subscribe` refused the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    #[error("already {limit} subscriptions")]
    TooMany { limit: usize },
    #[error("empty channel name")]
    EmptyChannel,
    #[error("the client is closed")]
    Closed,
}

/// The connection state, as a getter reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    Idle,
    Connecting,
    Handshaking,
    Ready,
    Backoff,
    Closed(CloseReason),
}
