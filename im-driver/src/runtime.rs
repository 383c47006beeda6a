//! What a runtime crate supplies: spawning, a re-armable timer, its clock, and opening a
//! WebSocket.
//!
//! Shaped after quinn's `Runtime`: methods take `&self` (a runtime may carry a handle to its
//! executor), the timer is one object per client that is re-armed rather than re-created, and
//! nothing requires `Send` where a single-threaded runtime cannot give it: [`MaybeSend`] is
//! `Send` on native targets and nothing on `wasm32`, where the browser's WebSocket and futures
//! are `!Send` and everything runs on one thread.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::Sink;
use im_proto::Instant;
use tungstenite::handshake::client::Request;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message};

/// `Send` where threads exist; nothing on `wasm32` (see the module docs).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` where threads exist; nothing on `wasm32` (see the module docs).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` where threads exist; nothing on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Sync` where threads exist; nothing on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future, `Send` where [`MaybeSend`] is.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A boxed future, `Send` where [`MaybeSend`] is.
#[cfg(target_arch = "wasm32")]
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// An async runtime the driver can run on. Each client keeps a clone (the runtimes of this
/// workspace are zero-sized).
pub trait Runtime: Clone + Debug + MaybeSend + MaybeSync + 'static {
    /// The WebSocket this runtime opens (tokio-tungstenite's or async-tungstenite's stream).
    type Ws: Stream<Item = Result<Message, WsError>>
        + Sink<Message, Error = WsError>
        + Unpin
        + MaybeSend
        + 'static;

    /// The platform's hints that the network is back or that the process slept (a browser's
    /// `online` and `visibilitychange`): each item makes the driver call the core's
    /// `network_online`, which skips what is left of a backoff wait or probes a `Ready` link
    /// at once (H4). A platform without such hints uses [`NoHints`], which costs nothing.
    type Hints: Stream<Item = ()> + Unpin + MaybeSend + 'static;

    /// Run `future` in the background until it completes (the client's driver task), or say
    /// why it cannot run (tokio: called outside a runtime, with no handle given).
    fn spawn<F: Future<Output = ()> + MaybeSend + 'static>(
        &self,
        future: F,
    ) -> Result<(), SpawnError>;

    /// A timer that fires at `deadline`; the driver keeps it and re-arms it with
    /// [`AsyncTimer::reset`].
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// Whether this runtime's sockets send WebSocket ping frames, as
    /// [`HeartbeatMode::WebSocketPing`](im_proto::HeartbeatMode::WebSocketPing) needs. A
    /// browser's WebSocket has no way to: a client configured so is refused at `connect`
    /// ([`BuildError::PingFramesUnsupported`](crate::BuildError::PingFramesUnsupported)) rather
    /// than left to declare every quiet link dead.
    const PING_FRAMES: bool = true;

    /// The hints for one client, dropped (listeners removed) when its task ends.
    fn hints(&self) -> Self::Hints;

    /// The runtime's clock (tokio's can be paused in tests).
    fn now(&self) -> Instant;

    /// Open the WebSocket described by `request` (TCP, TLS for `wss://`, the upgrade).
    /// `tls` is given for `wss://` and only then. Report a failed name lookup as
    /// `Destination::unresolved` and a TLS failure as the `io::Error` around the
    /// `rustls::Error` that tokio-rustls and futures-rustls return: the driver turns both into
    /// typed causes.
    fn connect(
        &self,
        request: Request,
        tls: Option<Arc<TlsConfig>>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + MaybeSend + 'static + use<Self>;
}

/// The [`Runtime::Hints`] of a platform that gives none: a stream that never yields.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHints;

impl Stream for NoHints {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<()>> {
        Poll::Pending
    }
}

/// What `wss://` connections are configured with: rustls' client configuration.
#[cfg(not(target_arch = "wasm32"))]
pub type TlsConfig = rustls::ClientConfig;

/// What `wss://` connections are configured with: nothing, in a browser. The browser does TLS
/// with its own trust store, and a page cannot change how; this type has no values, so
/// [`Runtime::connect`] is never given one.
#[cfg(target_arch = "wasm32")]
#[derive(Debug)]
pub enum TlsConfig {}

/// The runtime cannot run the client's task; [`ClientBuilder::connect`](crate::ClientBuilder::connect)
/// returns it as `BuildError::Spawn`.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the client's task: {0}")]
pub struct SpawnError(pub String);

/// A timer that can be moved to another instant without being re-created.
pub trait AsyncTimer: Debug + MaybeSend + 'static {
    /// Fire at `deadline` instead (earlier or later, armed or already fired).
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// `Ready` once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}
