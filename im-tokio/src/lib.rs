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
//! One tokio task per client; every buffer is bounded (the outbox by [`Limits`], events by
//! [`ClientBuilder::event_capacity`]: when the reader falls behind, the client stops reading the
//! socket instead of growing memory). Diagnostics go to `tracing`, in a span per client
//! (`im_client{id=… vendor=… name=…}`); credentials never do.
//!
//! ## Outside a runtime, and from other threads
//!
//! `connect()` never panics: without a tokio runtime on the thread it says so, and a
//! [`Tokio::with_handle`] runtime starts clients from any thread.
//!
//! ```
//! use im_tokio::{BuildError, Client, ClientBuilder, LiveChat, Tokio};
//!
//! let refused = Client::builder()
//!     .endpoint("ws://127.0.0.1:9/ws")
//!     .protocol(LiveChat::new(1, 2, "key"))
//!     .connect();
//! assert!(matches!(refused, Err(BuildError::Spawn(_))));
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let (client, _events) = ClientBuilder::with_runtime(Tokio::with_handle(runtime.handle().clone()))
//!     .endpoint("ws://127.0.0.1:9/ws")
//!     .protocol(LiveChat::new(1, 2, "key"))
//!     .connect()?;
//! runtime.block_on(client.close());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Many clients, one copy of the settings
//!
//! A bot fleet or a load generator builds its [`Config`] once and hands each client the same
//! `Arc`; each client still draws its own jitter and idempotency keys.
//!
//! ```
//! use std::sync::Arc;
//! use im_tokio::{Client, Config, LiveChat, ReconnectPolicy};
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let settings = Arc::new(
//!     Config::builder()
//!         .endpoint("ws://127.0.0.1:9/ws")
//!         .reconnect(ReconnectPolicy::default().max_attempts(Some(3)))
//!         .build()?,
//! );
//! let mut fleet = Vec::new();
//! for user in 1..=3 {
//!     let (client, events) = Client::builder()
//!         .config(settings.clone())
//!         .protocol(LiveChat::new(1, user, "key"))
//!         .name(format!("bot-{user}"))
//!         .connect()?;
//!     fleet.push((client, events));
//! }
//! assert_eq!(Arc::strong_count(&settings), 4); // ours and the three clients'
//! for (client, _) in &fleet {
//!     client.close().await;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## TLS
//!
//! `wss://` is rustls, certificates verified. The features choose the crypto (`ring`, the
//! default, or `aws-lc-rs`) and the trust (`webpki-roots`, Mozilla's roots compiled in, the
//! default, or `platform-verifier`, the operating system's). Anything else is a
//! [`rustls::ClientConfig`] of your own:
//!
//! ```
//! use std::sync::Arc;
//! use im_tokio::{rustls, ClientBuilder, LiveChat};
//!
//! let mut roots = rustls::RootCertStore::empty();
//! # let _ = &mut roots;
//! // roots.add(my_private_ca)?;
//! let provider = Arc::new(rustls::crypto::ring::default_provider());
//! let tls = rustls::ClientConfig::builder_with_provider(provider)
//!     .with_safe_default_protocol_versions()?
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! let builder = ClientBuilder::default()
//!     .endpoint("wss://im.internal.example/ws")
//!     .protocol(LiveChat::new(1, 2, "key"))
//!     .tls(Arc::new(tls));
//! # let _ = builder;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A failed connection says why in types: [`Cause::Transport`] carries a [`TransportError`]
//! (DNS, refused, timed out, TLS with the certificate's fault, …), and a refused upgrade is
//! `Cause::Refused { status }`.
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
#[cfg(feature = "socketio")]
pub use im_proto::SocketIo;
#[cfg(feature = "nats")]
pub use im_proto::{JetStream, Nats};

/// The tokio runtime, as `im-driver` needs it. By default a client's task goes to the runtime
/// `connect()` is called in; [`Tokio::with_handle`] names one, so clients can be started from
/// any thread (a GUI's, say).
#[derive(Clone, Debug, Default)]
pub struct Tokio {
    handle: Option<tokio::runtime::Handle>,
}

impl Tokio {
    /// Spawn clients' tasks on the runtime of `handle`
    /// (`ClientBuilder::with_runtime(Tokio::with_handle(handle))`).
    pub fn with_handle(handle: tokio::runtime::Handle) -> Self {
        Tokio {
            handle: Some(handle),
        }
    }
}

impl im_driver::Runtime for Tokio {
    type Ws = WebSocketStream<Socket>;
    type Hints = im_driver::NoHints;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) -> Result<(), SpawnError> {
        let handle = match &self.handle {
            Some(handle) => handle.clone(),
            None => tokio::runtime::Handle::try_current().map_err(|_| {
                SpawnError(
                    "no tokio runtime on this thread: call connect() inside one \
                     (#[tokio::main]) or build with Tokio::with_handle"
                        .into(),
                )
            })?,
        };
        handle.spawn(future);
        Ok(())
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer {
            sleep: tokio::time::sleep_until(deadline.into()),
        })
    }

    fn hints(&self) -> Self::Hints {
        im_driver::NoHints
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
        tls: Option<Arc<rustls::ClientConfig>>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + Send + 'static + use<> {
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

im_driver::runtime_client!(Tokio);
