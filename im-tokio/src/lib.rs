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
//!
//! This crate only plugs tokio into `im-driver` (spawn, timer, clock, tokio-tungstenite); the
//! same API runs on async-std and smol as `im-async-std`.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use im_driver::AsyncTimer;

use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

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

/// The tokio runtime, as `im-driver` needs it: tasks go to the runtime the client is built
/// in (`tokio::spawn`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl im_driver::Runtime for Tokio {
    type Ws = WebSocketStream<Socket>;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        tokio::spawn(future);
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer {
            sleep: tokio::time::sleep_until(deadline.into()),
        })
    }

    fn now(&self) -> Instant {
        // tokio's clock, so paused-time tests drive the core too.
        tokio::time::Instant::now().into_std()
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
                tokio_tungstenite::client_async_with_config(request, socket, Some(config)).await?;
            Ok(ws)
        }
    }
}

pin_project_lite::pin_project! {
    /// tokio's sleep, re-armed in place.
    #[derive(Debug)]
    struct Timer {
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().sleep.reset(deadline.into());
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().sleep.poll(cx)
    }
}

/// A connection to a messaging vendor, driven by one tokio task. See [`im_driver::Client`].
pub type Client = im_driver::Client<Tokio>;
/// Configures and starts a [`Client`].
pub type ClientBuilder = im_driver::ClientBuilder<Tokio>;
