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

    /// Run `future` in the background until it completes (the client's driver task).
    fn spawn<F: Future<Output = ()> + MaybeSend + 'static>(&self, future: F);

    /// A timer that fires at `deadline`; the driver keeps it and re-arms it with
    /// [`AsyncTimer::reset`].
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// The runtime's clock (tokio's can be paused in tests).
    fn now(&self) -> Instant;

    /// Open the WebSocket described by `request` (TCP, TLS for `wss://`, the upgrade).
    fn connect(
        &self,
        request: Request,
        tls: Arc<rustls::ClientConfig>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + MaybeSend + 'static;
}

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

impl Destination {
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
