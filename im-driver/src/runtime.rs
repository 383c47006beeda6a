//! What a runtime crate supplies: spawning, a timer, its clock, and opening a WebSocket.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_core::Stream;
use futures_util::Sink;
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
