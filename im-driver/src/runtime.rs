//! What a runtime crate supplies: spawning, a timer, its clock, and opening a WebSocket.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_core::Stream;
use futures_util::Sink;
use rustls::pki_types::ServerName;
use tungstenite::error::UrlError;
use tungstenite::handshake::client::Request;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message};

/// An async runtime the driver can run on.
pub trait Runtime: Send + Sync + 'static {
    /// The WebSocket this runtime opens (tokio-tungstenite's or async-tungstenite's stream).
    type Ws: Stream<Item = Result<Message, WsError>>
        + Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static;

    /// Run `future` in the background until it completes.
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F);

    /// A future that completes at `deadline`.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;

    /// The runtime's clock (tokio's can be paused in tests).
    fn now() -> Instant;

    /// Open the WebSocket described by `request` (TCP, TLS for `wss://`, the upgrade).
    fn connect(
        request: Request,
        tls: Arc<rustls::ClientConfig>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + Send;
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
