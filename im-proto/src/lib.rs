//! # im-proto: the sans-IO core of the im messaging client
//!
//! A [`Client`] is a pure state machine. It owns everything about staying connected to a
//! real-time messaging service — reconnects with backoff, heartbeats and dead-link detection, the
//! outbox, resubscription — and nothing about how bytes move or time passes. It never opens a
//! socket, reads a clock, sleeps or draws global randomness: inputs arrive with a `now`, and
//! everything it wants done comes out of one drain. The vendor's wire format is a [`Protocol`].
//!
//! Most users want `im-tokio` or `im-async-std`, which run this loop for them. This crate is for
//! driving the client in your own runtime, and for testing protocols in virtual time ([`sim`]).
//!
//! ## The driver loop
//!
//! 1. Build a [`Config`] with [`Config::builder`] — with a seed drawn from your process's
//!    entropy ([`ConfigBuilder::seed`]: the jitter and the idempotency keys come from it, and
//!    keys must not repeat across processes) — pick a protocol, create the client with
//!    [`Client::new`] (it checks the configuration again) and call [`Client::connect`]. (Many
//!    clients alike can share one `Arc<Config>`, each with its own seed: [`Client::with_seed`].)
//! 2. Drain [`Client::poll_output`] until it returns [`Output::Timeout`], doing what each
//!    [`Output`] says, in order:
//!    - [`Output::Connect`]: open a WebSocket to the endpoint, offering the given subprotocols.
//!      Remember the [`ConnId`]; report the result with
//!      [`handle_transport`](Client::handle_transport)`(now, conn, TransportEvent::Opened)` or
//!      `TransportEvent::Failed(..)`.
//!    - [`Output::Transmit`]: write the frame on that connection.
//!    - [`Output::Disconnect`]: close that connection with the given code and drop it; report
//!      nothing more about it.
//!    - [`Output::Event`]: hand the [`Event`] to the application.
//!    - [`Output::Timeout`]: the drain is over; it carries the next deadline.
//!
//!    A driver that hands events over in batches may call [`Client::take_events`] before each
//!    `poll_output`: it moves the events that come next, up to the next instruction, in one
//!    step (the same drain, the same order).
//! 3. Wait until whichever comes first:
//!    - the deadline: call [`Client::handle_timeout`]`(now)`;
//!    - a frame or close on the socket: call
//!      [`handle_transport`](Client::handle_transport)`(now, conn, TransportEvent::Frame(..))`
//!      or `TransportEvent::Closed { .. }`. A text frame is a [`Text`]: hand over the bytes
//!      your WebSocket library read with [`Text::from_utf8`] (no copy; decoders then share them
//!      with the messages they produce), or any `String` (with the `tungstenite` feature, a
//!      tungstenite `Utf8Bytes` converts with `into()`, unchecked since tungstenite checked it);
//!    - an application command: [`send`](Client::send), [`subscribe`](Client::subscribe),
//!      [`unsubscribe`](Client::unsubscribe), [`close`](Client::close),
//!      [`network_online`](Client::network_online), [`switch_protocol`](Client::switch_protocol).
//! 4. Go to 2. After [`Event::Closed`] the drain ends in `Output::Timeout(None)` for good:
//!    stop.
//!
//! Every input takes `now`: the client never reads a clock, so a test drives it in virtual
//! time ([`sim`]) and a frozen or jumping clock is just another input (H4).
//! [`Client::poll_timeout`] gives the same deadline again without draining.
//!
//! Events naming an old `ConnId` are ignored, so the driver never has to worry about a late
//! event from a socket it already dropped.
//!
//! A complete driver following these steps in one thread, with blocking `std::net` and
//! `tungstenite` and no async at all, is `tests/src/bin/blocking-driver.rs` in the repository
//! (about 200 lines, its comments numbered like the steps above); its test chats through a server
//! restart. The async drivers (`im-tokio`, `im-async-std`) run the same loop in `im-driver`,
//! waiting on the deadline, the socket and user commands at once.
//!
//! ## The rules
//!
//! Each rule has a name used in the code, in its doc comment and in the property test that
//! proves it (`tests/rules.rs`):
//!
//! | rule | what it says |
//! |---|---|
//! | R1 backoff | the wait after the n-th consecutive failure is in `[b_n·(1−j), b_n]`, `b_n = min(max, initial·mult^n)`, never zero |
//! | R2 anti-flap | the failure count resets only after `stable_after` in `Ready`; an earlier drop is a failure |
//! | R3 give up | after `max_attempts` consecutive failures: `GaveUp`, then `Closed` |
//! | R4 no zombie | after user close, kick or fatal error no `Connect` is ever emitted |
//! | R5 one transport | never two live connections |
//! | R6 first connect | a failing first connect is retried like any other |
//! | R7 endpoints | each new attempt goes to the next endpoint; protocols may add discovered ones |
//! | R8 server hint | a server may ask for a reconnect not before X, or end the session (kick) |
//! | H1 cadence | in client-driven modes a heartbeat goes out at least every `interval` |
//! | H2 dead link | no inbound traffic for `interval + timeout` ⇒ dead at exactly that instant |
//! | H3 liveness | any inbound frame proves liveness; pongs report the round-trip time |
//! | H4 clock jump | woken far past a deadline ⇒ probe the link instead of trusting stale state |
//! | Q1 bounded | the outbox is bounded by count and bytes, with optional TTL; full ⇒ `Err` |
//! | Q2 order | after (re)connect, held messages go out in FIFO order before newer ones |
//! | Q3 at-least-once | a message the server will ack is held until acked: resent with the same key after a reconnect and after an ack timeout while retries remain, then `Undelivered`; one it will not ack is `Sent` once written and never resent |
//! | Q4 accounted | on close every message not delivered is handed back by id |
//! | S1 resubscribe | every `Ready` re-establishes the whole desired subscription set |

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

mod backoff;
mod client;
mod config;
mod error;
mod message;
mod outbox;
mod output;
mod protocol;
pub mod protocols;
mod queue;
#[cfg(feature = "sim")]
pub mod sim;
mod text;
mod transport;

pub use backoff::{ceiling as backoff_ceiling, MIN_DELAY};
pub use client::{Client, SwitchError, CLOSE_NORMAL};
pub use config::{
    Config, ConfigBuilder, ConfigError, HeartbeatMode, Limits, OnAuthRefusal, ReconnectPolicy,
};
pub use error::{EncodeError, ProtocolError};
pub use message::{Body, Delivery, Json, Message, OutgoingMessage, SendId};
pub use output::{
    Cause, CloseReason, Error, Event, Output, SendError, State, SubscribeError, Undelivered,
};
pub use protocol::{check_json_depth, Context, Protocol, ProtocolEvent, SendInfo};
#[cfg(feature = "livechat")]
pub use protocols::livechat::LiveChat;
#[cfg(feature = "mqtt")]
pub use protocols::mqtt::Mqtt;
#[cfg(feature = "nats")]
pub use protocols::nats::Nats;
#[cfg(feature = "socketio")]
pub use protocols::socketio::SocketIo;
pub use text::Text;
pub use transport::{ConnId, Endpoint, Frame, TransportEvent};
