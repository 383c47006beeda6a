//! # im-async-std: the im messaging client on async-std and smol
//!
//! The same client as `im-tokio`, with the same API: moving between them is a change of crate
//! name and executor. Built on async-tungstenite, async-net and async-io, which async-std and
//! smol share, so it runs under either (async-std itself was discontinued upstream in favour of
//! smol).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use im_async_std::{Client, Event, LiveChat};
//!
//! let (client, mut events) = Client::builder()
//!     .endpoint("wss://im.example.com/ws")
//!     .protocol(LiveChat::new(1, 9527, "room key"))
//!     .connect()?;
//! client.subscribe("room-1")?;
//! client.send_json("room-1", &serde_json::json!({ "text": "hi" }))?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Closed { .. } = event {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The driver task is spawned on a small executor of its own thread (async-io's reactor drives
//! its sockets and timers), so the client works the same whether the application runs
//! async-std, smol, or `futures::executor::block_on`.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use im_driver::AsyncTimer;

use async_tungstenite::tungstenite::handshake::client::Request;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::WebSocketStream;

mod socket;
pub use socket::Socket;

pub use im_driver::api::*;
#[cfg(feature = "livechat")]
pub use im_proto::LiveChat;
#[cfg(feature = "mqtt")]
pub use im_proto::Mqtt;
#[cfg(feature = "nats")]
pub use im_proto::Nats;
#[cfg(feature = "socketio")]
pub use im_proto::SocketIo;

/// async-io's reactor and timers, with driver tasks on one executor thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncIo;

/// The executor all driver tasks of this process run on: one thread, started on first use.
fn executor() -> &'static async_executor::Executor<'static> {
    static EXECUTOR: OnceLock<&'static async_executor::Executor<'static>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let ex: &'static async_executor::Executor<'static> =
            Box::leak(Box::new(async_executor::Executor::new()));
        std::thread::Builder::new()
            .name("im-async-std".into())
            .spawn(move || async_io::block_on(ex.run(std::future::pending::<()>())))
            .expect("spawn the im-async-std executor thread");
        ex
    })
}

impl im_driver::Runtime for AsyncIo {
    type Ws = WebSocketStream<Socket>;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        executor().spawn(future).detach();
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(async_io::Timer::at(deadline)))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    // Not an `async fn`: the future must not borrow `self` (the driver keeps it past the call).
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        request: Request,
        tls: Arc<rustls::ClientConfig>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + Send + 'static {
        async move {
            let socket = Socket::open(&request, tls).await?;
            let (ws, _response) =
                async_tungstenite::client_async_with_config(request, socket, Some(config)).await?;
            Ok(ws)
        }
    }
}

/// async-io's timer, re-armed in place.
#[derive(Debug)]
struct Timer(async_io::Timer);

impl AsyncTimer for Timer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A connection to a messaging vendor, driven by one task. See [`im_driver::Client`].
pub type Client = im_driver::Client<AsyncIo>;
/// Configures and starts a [`Client`].
pub type ClientBuilder = im_driver::ClientBuilder<AsyncIo>;
