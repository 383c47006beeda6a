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
//! The loop by hand, with the socket played by the example (the livechat server greets a new
//! connection with `{"cmd":"auth1",…}`, a challenge the client answers with its login):
//!
//! ```
//! # #[cfg(feature = "livechat")] {
//! use std::time::{Duration, Instant};
//! use im_proto::{Client, Config, Event, Frame, LiveChat, Output, TransportEvent};
//!
//! // 1. Settings (a fixed seed here; a real driver draws one from the OS), protocol, connect.
//! let config = Config::builder().endpoint("ws://127.0.0.1:9001/ws").seed(7).build().unwrap();
//! let start = Instant::now();
//! let mut client = Client::new(config, Box::new(LiveChat::new(1, 2, "key")), start).unwrap();
//! client.connect(start);
//!
//! // 2. Drain: the client asks for a socket; the driver opens it and says so.
//! let Output::Connect { conn, endpoint, .. } = client.poll_output() else { unreachable!() };
//! assert_eq!(endpoint.url(), "ws://127.0.0.1:9001/ws");
//! client.handle_transport(start, conn, TransportEvent::Opened);
//! // Nothing to do until the server speaks, or the handshake deadline (10 s).
//! assert_eq!(client.poll_output(), Output::Timeout(Some(start + Duration::from_secs(10))));
//!
//! // 3. A frame arrives. Drain: the login goes out (the driver writes it), and we are in.
//! let greeting = r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#;
//! client.handle_transport(start, conn, TransportEvent::Frame(Frame::Text(greeting.into())));
//! assert!(matches!(client.poll_output(), Output::Transmit { frame: Frame::Text(_), .. }));
//! assert!(matches!(client.poll_output(), Output::Event(Event::Connected { .. })));
//!
//! // 3, the clock: call `handle_timeout` at each deadline. The heartbeat is due after 25 s (H1).
//! let mut now = start;
//! let heartbeat = loop {
//!     match client.poll_output() {
//!         Output::Timeout(Some(deadline)) => {
//!             now = deadline;
//!             client.handle_timeout(now);
//!         }
//!         Output::Transmit { frame: Frame::Text(frame), .. } => break frame,
//!         other => panic!("{other:?}"),
//!     }
//! };
//! assert!(heartbeat.contains("heartbeat"));
//! assert_eq!(now - start, Duration::from_secs(25));
//! # }
//! ```
//!
//! A complete driver following these steps in one thread, with blocking `std::net` and
//! `tungstenite` and no async at all, is this crate's example `blocking_driver` (about 250
//! lines, its comments numbered like the steps above; its test chats through a server restart).
//! The async drivers (`im-tokio`, `im-async-std`) run the same loop in `im-driver`, waiting on
//! the deadline, the socket and user commands at once.
//!
//! ## Write your own protocol
//!
//! A vendor's wire format is a [`Protocol`]: the core hands it frames and requests with a
//! [`Context`] to answer through, and it never sees a socket or a clock. Here, a line protocol
//! (`SUB room`, `MSG room text`, `PING`/`PONG`), tested in virtual time with [`sim`]:
//!
//! ```
//! # #[cfg(feature = "sim")] {
//! use std::time::{Duration, Instant};
//! use im_proto::sim::{Harness, Reply, ScriptedPeer};
//! use im_proto::{
//!     Body, Config, Context, Delivery, EncodeError, Event, Frame, Message, OutgoingMessage,
//!     Protocol, ProtocolError, ProtocolEvent, SendInfo,
//! };
//!
//! struct Lines;
//!
//! impl Protocol for Lines {
//!     fn name(&self) -> &'static str {
//!         "lines"
//!     }
//!     fn on_open(&mut self, cx: &mut Context<'_>) {
//!         cx.emit(ProtocolEvent::Ready); // no handshake
//!     }
//!     fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
//!         let Frame::Text(text) = frame else { return Err(ProtocolError::UnexpectedFrame("binary")) };
//!         match text.split_once(' ') {
//!             _ if text == "PONG" => cx.emit(ProtocolEvent::Pong),
//!             Some(("MSG", rest)) => {
//!                 let (room, line) = rest.split_once(' ').unwrap_or((rest, ""));
//!                 cx.emit(ProtocolEvent::Message(Message::new(room, Body::Text(line.into()))));
//!             }
//!             _ => return Err(ProtocolError::Malformed(text.to_string())),
//!         }
//!         Ok(())
//!     }
//!     fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
//!         cx.transmit(Frame::Text("PING".into()));
//!     }
//!     fn on_send(&mut self, cx: &mut Context<'_>, msg: &OutgoingMessage, _: SendInfo<'_>)
//!         -> Result<(), EncodeError>
//!     {
//!         let Some(line) = msg.body.as_text() else {
//!             return Err(EncodeError::UnsupportedBody { protocol: "lines", body: "binary" });
//!         };
//!         // This server never acks: the message's fate is `Sent` once written.
//!         let frame = Frame::Text(format!("MSG {} {line}", msg.channel).into());
//!         cx.transmit_message(frame, Delivery::AtMostOnce);
//!         Ok(())
//!     }
//!     fn on_subscribe(&mut self, cx: &mut Context<'_>, room: &str) -> Result<(), EncodeError> {
//!         cx.transmit(Frame::Text(format!("SUB {room}").into()));
//!         Ok(())
//!     }
//!     fn on_unsubscribe(&mut self, cx: &mut Context<'_>, room: &str) -> Result<(), EncodeError> {
//!         cx.transmit(Frame::Text(format!("UNSUB {room}").into()));
//!         Ok(())
//!     }
//! }
//!
//! // A server that echoes messages and answers pings, in virtual time.
//! let peer = ScriptedPeer::new().respond(|_, frame| match frame {
//!     Frame::Text(t) if t == "PING" => vec![Reply::text("PONG")],
//!     Frame::Text(t) if t.starts_with("MSG ") => vec![Reply::text(t.as_str())],
//!     _ => vec![],
//! });
//! let config = Config::builder().endpoint("ws://sim/lines").seed(1).build().unwrap();
//! let mut sim = Harness::new(config, Box::new(Lines), peer, Instant::now()).unwrap();
//! sim.client.connect(sim.clock.now());
//! sim.client.subscribe(sim.clock.now(), "lobby").unwrap();
//! sim.client.send(sim.clock.now(), OutgoingMessage::text("lobby", "hi")).unwrap();
//! sim.run_for(Duration::from_secs(60)); // two heartbeats answered on the way
//! let events: Vec<Event> = sim.events().cloned().collect();
//! assert!(events.iter().any(|e| matches!(e, Event::Sent { .. })));
//! assert!(events.iter().any(|e| matches!(e, Event::Message(m) if m.body.as_text() == Some("hi"))));
//! assert!(events.iter().any(|e| matches!(e, Event::Heartbeat { rtt: Some(_) })));
//! # }
//! ```
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
//! | Q6 refused | a message the server refused for good (`ProtocolEvent::Refused`) ends at once, `Undelivered{Refused}` with the server's reason; maybe delivered only when an earlier transmission went unanswered |
//! | Q7 held while unread | while the driver does not read (`set_reading(false)`: its user is behind on events) no message goes out, so fates cannot pile up among unread events, and no ack times out, since none can be read; the outbox fills and `send` says `OutboxFull`; on resume what waited goes out, in order, and every ack awaited gets a full `ack_timeout` again |
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
pub mod rules;
#[cfg(feature = "sim")]
pub mod sim;
mod text;
mod transport;

pub use client::{Client, SwitchError, CLOSE_NORMAL};
pub use config::{
    Config, ConfigBuilder, ConfigError, HeartbeatMode, Limits, OnAuthRefusal, ReconnectPolicy,
};
pub use error::{CertificateError, EncodeError, ProtocolError, TlsError, TransportError};
pub use message::{Body, Delivery, Json, Message, OutgoingMessage, SendId};
pub use output::{
    Cause, CloseReason, Event, Output, ReportedError, RestoreError, SendError, State,
    SubscribeError, Undelivered,
};
pub use protocol::{check_json_depth, Context, Protocol, ProtocolEvent, SendInfo};
#[cfg(feature = "livechat")]
pub use protocols::livechat::LiveChat;
#[cfg(feature = "mqtt")]
pub use protocols::mqtt::Mqtt;
#[cfg(feature = "nats")]
pub use protocols::nats::{JetStream, Nats};
#[cfg(feature = "socketio")]
pub use protocols::socketio::SocketIo;
pub use text::Text;
pub use transport::{ConnId, Endpoint, Frame, TransportEvent};
/// The instant every input takes: `std::time::Instant` itself on native targets, and on
/// `wasm32-unknown-unknown` (where `std`'s clock panics) one read from the browser's
/// `performance.now()` (the `web-time` crate).
pub use web_time::Instant;
