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
//! Each client's task runs on async-std's executor, on every core (feature `async-std`, on by
//! default); under smol, give the client your executor with [`AsyncIo::with_executor`], or any
//! spawner with [`AsyncIo::with_spawner`]. async-io's reactor drives the sockets and timers
//! either way.
//!
//! ```
//! use std::sync::Arc;
//! use im_async_std::{AsyncIo, ClientBuilder, Event, LiveChat};
//!
//! // The application's executor (smol's `Executor` is this type), run by its own threads.
//! let executor = Arc::new(async_executor::Executor::new());
//! async_io::block_on(executor.run(async {
//!     let (client, mut events) = ClientBuilder::with_runtime(AsyncIo::with_executor(executor.clone()))
//!         .endpoint("ws://127.0.0.1:9/ws") // nobody listens: the client keeps retrying
//!         .protocol(LiveChat::new(1, 2, "key"))
//!         .name("smol-client")
//!         .connect()?;
//!     client.close().await;
//!     while let Some(event) = events.recv().await {
//!         if let Event::Closed { .. } = event {
//!             break;
//!         }
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! }))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
#[cfg(not(feature = "async-std"))]
use std::sync::OnceLock;
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
#[cfg(feature = "socketio")]
pub use im_proto::SocketIo;
#[cfg(feature = "nats")]
pub use im_proto::{JetStream, Nats};

/// async-io's reactor and timers, and an executor for the clients' tasks: by default
/// async-std's (feature `async-std`, on by default), which runs on every core; or the executor
/// you run ([`AsyncIo::with_executor`], e.g. a `smol::Executor`); or any spawner
/// ([`AsyncIo::with_spawner`]).
#[derive(Clone, Default)]
pub struct AsyncIo {
    spawner: Spawner,
}

/// A task for a spawner: the client's driver.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

#[derive(Clone, Default)]
enum Spawner {
    #[default]
    Default,
    Executor(Arc<async_executor::Executor<'static>>),
    Custom(Arc<dyn Fn(Task) + Send + Sync>),
}

impl std::fmt::Debug for AsyncIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spawner = match self.spawner {
            Spawner::Default if cfg!(feature = "async-std") => "async-std",
            Spawner::Default => "im-async-std's own",
            Spawner::Executor(_) => "executor",
            Spawner::Custom(_) => "custom",
        };
        f.debug_struct("AsyncIo")
            .field("spawner", &spawner)
            .finish()
    }
}

impl AsyncIo {
    /// Run clients' tasks on `executor`: smol's (`smol::Executor` is this type) or any
    /// `async_executor::Executor` your threads run.
    pub fn with_executor(executor: Arc<async_executor::Executor<'static>>) -> Self {
        AsyncIo {
            spawner: Spawner::Executor(executor),
        }
    }

    /// Run clients' tasks with `spawn` (detached: the task ends with the client).
    pub fn with_spawner(spawn: impl Fn(Task) + Send + Sync + 'static) -> Self {
        AsyncIo {
            spawner: Spawner::Custom(Arc::new(spawn)),
        }
    }
}

/// Without the `async-std` feature and without an executor given: an executor of this crate's
/// own, one thread per core, started on first use.
#[cfg(not(feature = "async-std"))]
fn own_executor() -> &'static async_executor::Executor<'static> {
    static EXECUTOR: OnceLock<async_executor::Executor<'static>> = OnceLock::new();
    let mut started = false;
    let executor = EXECUTOR.get_or_init(|| {
        started = true;
        async_executor::Executor::new()
    });
    if started {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..threads {
            let run = move || async_io::block_on(executor.run(std::future::pending::<()>()));
            // A thread that cannot start leaves the others; with none, tasks would never run,
            // which the first client's connect reports.
            let _ = std::thread::Builder::new()
                .name(format!("im-async-std-{i}"))
                .spawn(run);
        }
    }
    executor
}

impl im_driver::Runtime for AsyncIo {
    type Ws = WebSocketStream<Socket>;
    type Hints = im_driver::NoHints;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) -> Result<(), SpawnError> {
        match &self.spawner {
            #[cfg(feature = "async-std")]
            Spawner::Default => drop(async_std::task::spawn(future)),
            #[cfg(not(feature = "async-std"))]
            Spawner::Default => own_executor().spawn(future).detach(),
            Spawner::Executor(executor) => executor.spawn(future).detach(),
            Spawner::Custom(spawn) => spawn(Box::pin(future)),
        }
        Ok(())
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(async_io::Timer::at(deadline)))
    }

    fn hints(&self) -> Self::Hints {
        im_driver::NoHints
    }

    fn now(&self) -> Instant {
        Instant::now()
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

im_driver::runtime_client!(AsyncIo);
