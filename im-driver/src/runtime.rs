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
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use futures_util::Sink;
use rustls::pki_types::ServerName;
use tungstenite::error::UrlError;
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

    /// Run `future` in the background until it completes (the client's driver task), or say
    /// why it cannot run (tokio: called outside a runtime, with no handle given).
    fn spawn<F: Future<Output = ()> + MaybeSend + 'static>(
        &self,
        future: F,
    ) -> Result<(), SpawnError>;

    /// A timer that fires at `deadline`; the driver keeps it and re-arms it with
    /// [`AsyncTimer::reset`].
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// The runtime's clock (tokio's can be paused in tests).
    fn now(&self) -> Instant;

    /// Open the WebSocket described by `request` (TCP, TLS for `wss://`, the upgrade).
    /// `tls` is given for `wss://` and only then. Report a failed name lookup as
    /// [`Destination::unresolved`] and a TLS failure as the `io::Error` around the
    /// `rustls::Error` that tokio-rustls and futures-rustls return: the driver turns both into
    /// typed causes.
    fn connect(
        &self,
        request: Request,
        tls: Option<Arc<rustls::ClientConfig>>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + MaybeSend + 'static + use<Self>;
}

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

/// Where a WebSocket request goes: what a runtime crate needs to open its socket.
#[derive(Debug)]
pub struct Destination {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The name to verify the server's certificate against, for `wss://`; `None` for `ws://`.
    pub tls: Option<ServerName<'static>>,
}

/// A host name that did not resolve: the payload of the `io::Error` from
/// [`Destination::unresolved`], which the driver reports as `TransportError::Dns`.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {detail}")]
pub struct Unresolved {
    pub(crate) host: String,
    pub(crate) detail: String,
}

impl Destination {
    /// The error for a failed lookup of this destination's host (`why` is what the resolver said;
    /// `None` when it found no address).
    pub fn unresolved(&self, why: Option<io::Error>) -> io::Error {
        io::Error::other(Unresolved {
            host: self.host.clone(),
            detail: why.map_or_else(|| "no address".to_owned(), |e| e.to_string()),
        })
    }

    /// Connect to the first of `addrs` that accepts, with `connect` (the runtime's TCP
    /// connect); the last refusal if none does.
    pub async fn connect_first<S, F, Fut>(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
        connect: F,
    ) -> io::Result<S>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<S>>,
    {
        let mut last = None;
        for addr in addrs {
            match connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.unresolved(None)))
    }

    /// The destination of `request`: `ws://` or `wss://`, the default port for the scheme.
    pub fn of(request: &Request) -> Result<Self, WsError> {
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme)),
        };
        let host = uri
            .host()
            .ok_or(WsError::Url(UrlError::NoHostName))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| WsError::Url(UrlError::NoHostName))?;
            Some(name)
        } else {
            None
        };
        Ok(Destination { host, port, tls })
    }
}
