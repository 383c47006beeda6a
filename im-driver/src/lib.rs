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
mod conn;
mod driver;
mod owner;
mod runtime;
mod transport;

pub use builder::{BuildError, ClientBuilder};
pub use client::{Client, Events, Recv, SendJsonError};
pub use runtime::{AsyncTimer, Destination, MaybeSend, MaybeSync, Runtime};
pub use transport::{default_tls, ws_config, HeaderFn};

/// Everything an application names, re-exported by `im-tokio` and `im-async-std` (the vendor
/// protocols come from there, by feature).
pub mod api {
    pub use crate::{default_tls, BuildError, Events, HeaderFn, Recv, SendJsonError};
    pub use im_proto::{
        Body, Cause, CloseReason, Delivery, EncodeError, Endpoint, Error, Event, HeartbeatMode,
        Limits, Message, OnAuthRefusal, OutgoingMessage, Protocol, ProtocolError, ReconnectPolicy,
        SendError, SendId, State, SubscribeError, SwitchError, Undelivered,
    };
}
