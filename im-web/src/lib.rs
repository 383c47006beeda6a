//! # im-web: the im messaging client in the browser
//!
//! The same client as `im-tokio` and `im-async-std`, compiled to `wasm32-unknown-unknown` and
//! driven by the browser: its `WebSocket`, its timers (`setTimeout`), its clock
//! (`performance.now()`), and its promise queue for the client's task
//! (`wasm_bindgen_futures::spawn_local`). Backoff with jitter, anti-flap, dead-link detection,
//! the bounded outbox, resubscription and a choice of vendors work as they do natively: the
//! rules live in `im-proto`, which this crate only feeds.
//!
//! ```rust
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::StreamExt;
//! use im_web::{Client, Event, LiveChat};
//!
//! let (client, mut events) = Client::builder()
//!     .endpoint("wss://chat.example/ws")
//!     .protocol(LiveChat::new(7, 42, "secret"))
//!     .connect()?;
//! client.subscribe("lobby")?;
//! client.send_text("lobby", "hello from the browser")?;
//! while let Some(event) = events.next().await {
//!     if let Event::Message(m) = event {
//!         // render m.body into the page
//! #       let _ = m;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! (`examples/chat.rs` is this, in a page: built for wasm32 by CI and driven in headless
//! Chromium by `cargo run -p im-tests --bin web-demo -- --check`.)
//!
//! In a Leptos or Dioxus app, keep the `Client` (cheap to clone) in context or a signal and
//! read `Events` in one `spawn_local` task that writes into your signals. Dropping the last
//! `Client` closes the connection, clears its timers and removes its page listeners.
//!
//! ## What a browser changes
//!
//! - **No headers.** A page cannot set headers on a WebSocket upgrade, so the builder has no
//!   `headers` here. Credentials go where every vendor of this crate puts them anyway, in the
//!   first frames (livechat's `auth2`, MQTT's CONNECT, NATS's CONNECT, Socket.IO's `40{auth}`),
//!   or in the URL's query (`wss://host/ws?token=…`), which the client never logs.
//! - **Subprotocols** are sent (MQTT's `mqtt`), as the browser's `protocols` argument.
//! - **TLS is the browser's**: `wss://` uses its trust store, and the builder has no `tls`.
//! - **No ping frames.** A browser answers a server's WebSocket pings by itself but cannot send
//!   one: `HeartbeatMode::WebSocketPing` is refused at `connect`
//!   ([`BuildError::PingFramesUnsupported`]); the protocols' own heartbeats (the default) work.
//! - **Failures look alike.** Browsers report a refused connection, an unknown host, a bad
//!   certificate and an HTTP refusal the same way (close code 1006, no reason), so that pages
//!   cannot probe networks. They all arrive as `Cause::Transport(TransportError::Io { .. })` and
//!   are retried with backoff; in particular a refused upgrade cannot be told from a network
//!   error, so `OnAuthRefusal` does not apply.
//! - **Background tabs.** Browsers slow a hidden tab's timers to once a second or a minute.
//!   The client does not count on them: when the page becomes visible again it probes the link
//!   at once (H4), and the window's `online` event skips what is left of a backoff wait; both
//!   are [`Client::network_online`], called for you.
//! - **Binary frames** (MQTT, NATS) are received as `ArrayBuffer`s (`binaryType`), and messages
//!   the page has not read yet wait in a queue bounded by the client's frame limit: a page that
//!   stops reading loses the connection with a reported error, never a message in silence.
//!
//! The crate is empty on other targets, so a workspace that holds it still builds natively.

#![forbid(unsafe_code)]
// Natively the crate is empty and the docs' links have nothing to point at; docs.rs and CI
// document it for wasm32, where every link is checked.
#![cfg_attr(not(target_arch = "wasm32"), allow(rustdoc::broken_intra_doc_links))]
#![warn(missing_debug_implementations)]

#[cfg(target_arch = "wasm32")]
mod hints;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
mod timer;

#[cfg(target_arch = "wasm32")]
pub use browser::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use im_driver::{AsyncTimer, TlsConfig};
    use tungstenite::handshake::client::Request;
    use tungstenite::protocol::WebSocketConfig;
    use tungstenite::Error as WsError;
    use web_time::Instant;

    pub use crate::hints::PageHints;
    pub use crate::socket::WebSocket;
    use crate::timer::Timer;

    pub use im_driver::api::*;
    #[cfg(feature = "livechat")]
    pub use im_proto::LiveChat;
    #[cfg(feature = "mqtt")]
    pub use im_proto::Mqtt;
    #[cfg(feature = "socketio")]
    pub use im_proto::SocketIo;
    #[cfg(feature = "nats")]
    pub use im_proto::{JetStream, Nats};

    /// The browser, as `im-driver` needs it: tasks on the page's promise queue, timers on
    /// `setTimeout`, the clock of `performance.now()`, sockets from `new WebSocket(..)`.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Browser;

    impl im_driver::Runtime for Browser {
        type Ws = WebSocket;
        type Hints = PageHints;

        const PING_FRAMES: bool = false;

        fn spawn<F: Future<Output = ()> + 'static>(&self, future: F) -> Result<(), SpawnError> {
            wasm_bindgen_futures::spawn_local(future);
            Ok(())
        }

        fn hints(&self) -> PageHints {
            PageHints::listen()
        }

        fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
            Box::pin(Timer::new(deadline))
        }

        fn now(&self) -> Instant {
            Instant::now()
        }

        fn connect(
            &self,
            request: Request,
            tls: Option<Arc<TlsConfig>>,
            config: WebSocketConfig,
        ) -> impl Future<Output = Result<WebSocket, WsError>> + 'static + use<> {
            // `TlsConfig` has no values in a browser: the browser does TLS.
            if let Some(tls) = tls {
                match *tls {}
            }
            WebSocket::open(request, config)
        }
    }

    im_driver::runtime_client!(Browser);
}
