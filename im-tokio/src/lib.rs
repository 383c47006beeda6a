//! # im-tokio: the im messaging client on tokio
//!
//! Connect to a vendor, subscribe, send, receive. Connections, heartbeats, reconnects with
//! jittered backoff, the outbox and resubscription are handled for you; the vendor's wire
//! protocol is a [`Protocol`] you pick (or write).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use im_tokio::{Client, Event, LiveChat};
//!
//! let (client, mut events) = Client::builder()
//!     .endpoint("wss://im.example.com/ws")
//!     .protocol(LiveChat::new(1, 9527, "room key"))
//!     .connect()?;
//! client.subscribe("room-1")?;
//! client.send_json("room-1", &serde_json::json!({ "text": "hi" }))?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(m) => println!("{}: {:?}", m.channel, m.body.as_text()),
//!         Event::Closed { .. } => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! One tokio task per client; every buffer is bounded (the outbox by `Limits`, events by
//! [`ClientBuilder::event_capacity`]: when the reader falls behind, the client stops reading the
//! socket instead of growing memory). TLS is rustls with the webpki roots, verified by default.
//! Diagnostics go to `tracing`; credentials never do.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

mod builder;
mod client;
mod driver;
mod transport;

pub use builder::{BuildError, ClientBuilder};
pub use client::{Client, Events, SendJsonError};
#[cfg(feature = "livechat")]
pub use im_proto::LiveChat;
pub use im_proto::{
    Body, Cause, CloseReason, Endpoint, Error, Event, HeartbeatMode, Limits, Message,
    OutgoingMessage, Protocol, ReconnectPolicy, SendError, SendId, State, SubscribeError,
    SwitchError, Undelivered,
};
pub use transport::{default_tls, HeaderFn};

impl Client {
    /// Start configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}
