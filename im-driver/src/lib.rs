//! # im-driver: the runtime-agnostic driver of the im messaging client
//!
//! The client handle, the event stream and the one task per client that runs the
//! [`im_proto`] driver loop, written on `futures` so that any executor can run it. A runtime
//! crate supplies a [`Runtime`]: spawning, a re-armable timer, its clock, and opening a WebSocket.
//! Applications use `im-tokio` or `im-async-std`, which are exactly that and nothing more.
//!
//! The socket is driven by whoever is there: a `send` writes its frame from the caller's task,
//! a reader waiting in [`Events::recv`] reads its messages itself, and the task keeps the clock
//! (heartbeats, reconnects, dead-link checks) and reads whenever no reader waits.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

mod builder;
mod client;
mod concrete;
mod conn;
#[cfg(not(target_arch = "wasm32"))]
mod destination;
mod dial;
mod driver;
#[cfg(feature = "store")]
mod durable;
mod owner;
mod read_ahead;
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
mod tls;

pub use builder::{BuildError, ClientBuilder};
pub use client::{Client, Events, Recv, SendJsonError};
#[cfg(not(target_arch = "wasm32"))]
pub use destination::{Destination, Unresolved};
pub use dial::HeaderFn;
pub use read_ahead::{ReadAhead, READ_AHEAD};
pub use runtime::{AsyncTimer, MaybeSend, MaybeSync, NoHints, Runtime, SpawnError, TlsConfig};
/// The TLS library, for building your own [`ClientBuilder::tls`] configuration.
#[cfg(not(target_arch = "wasm32"))]
pub use rustls;
#[cfg(not(target_arch = "wasm32"))]
pub use tls::{default_tls, DefaultTlsError};

/// The WebSocket limits the driver opens every connection with (for raw loops that compare
/// with it, as the benchmark's).
#[doc(hidden)]
pub use dial::ws_config;

#[doc(hidden)]
pub use serde as __serde;

/// The durable outbox (feature `store`): [`ClientBuilder::store`] takes its `Store`.
#[cfg(feature = "store")]
pub use im_store;

/// Everything an application names, re-exported by `im-tokio` and `im-async-std` (the vendor
/// protocols come from there, by feature), beside their own `Client` and `ClientBuilder`.
pub mod api {
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::{default_tls, rustls, DefaultTlsError};
    pub use crate::{BuildError, Events, HeaderFn, Recv, SendJsonError, SpawnError};
    pub use im_proto::{
        Body, Cause, CertificateError, CloseReason, Config, ConfigBuilder, ConfigError, Delivery,
        EncodeError, Endpoint, Event, HeartbeatMode, Limits, Message, OnAuthRefusal,
        OutgoingMessage, Protocol, ProtocolError, ReconnectPolicy, ReportedError, RestoreError,
        SendError, SendId, State, SubscribeError, SwitchError, TlsError, TransportError,
        Undelivered,
    };
    #[cfg(feature = "store")]
    pub use im_store::{Store, StoreError, Stored, WritePolicy};
}
