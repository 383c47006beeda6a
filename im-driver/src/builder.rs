//! Configuring and starting a client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use im_proto::{
    Config, ConfigBuilder, ConfigError, Endpoint, HeartbeatMode, Limits, OnAuthRefusal, Protocol,
    ReconnectPolicy,
};

use crate::client::{Client, Events};
use crate::conn::Conn;
use crate::dial::{Dialer, HeaderFn};
use crate::driver;
use crate::runtime::{Runtime, SpawnError, TlsConfig};
#[cfg(not(target_arch = "wasm32"))]
use crate::tls;

/// Builds a [`Client`]. Only an endpoint and a protocol are required.
pub struct ClientBuilder<R> {
    runtime: R,
    settings: Settings,
    name: Option<String>,
    seed: Option<u64>,
    protocol: Option<Box<dyn Protocol>>,
    headers: Option<HeaderFn>,
    tls: Option<Arc<TlsConfig>>,
    event_capacity: usize,
    write_timeout: Duration,
    #[cfg(feature = "store")]
    store: Option<im_store::Store>,
}

/// This client's own settings, or settings it shares with others.
// Not boxed: a builder lives for one expression, and the own settings are the common case.
#[allow(clippy::large_enum_variant)]
enum Settings {
    Own(ConfigBuilder),
    Shared(Arc<Config>),
}

impl Settings {
    /// The builder to change: a shared configuration is copied first (copy on write).
    fn edit(self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Self {
        let own = match self {
            Settings::Own(builder) => builder,
            Settings::Shared(config) => ConfigBuilder::from(Arc::unwrap_or_clone(config)),
        };
        Settings::Own(f(own))
    }
}

impl<R: Runtime> std::fmt::Debug for ClientBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("runtime", &self.runtime)
            .field("name", &self.name)
            .field("protocol", &self.protocol.as_ref().map(|p| p.name()))
            .field(
                "shared_config",
                &matches!(self.settings, Settings::Shared(_)),
            )
            .field("headers", &self.headers.as_ref().map(|_| "<closure>"))
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

/// The client could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("no protocol given: call .protocol(..)")]
    NoProtocol,
    #[error("event capacity must be at least 1")]
    ZeroEventCapacity,
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The runtime cannot run the client's task (tokio: no runtime on this thread).
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// `HeartbeatMode::WebSocketPing` on a runtime whose sockets cannot send ping frames (a
    /// browser's): use `HeartbeatMode::ClientDriven`, the protocol's own heartbeat.
    #[error("this runtime cannot send WebSocket ping frames (a browser's WebSocket has no API for them): use HeartbeatMode::ClientDriven")]
    PingFramesUnsupported,
    /// Q5: the durable store could not be read back.
    #[cfg(feature = "store")]
    #[error(transparent)]
    Store(#[from] im_store::StoreError),
    /// Q5: the durable store held a message the client cannot take back (an id past 2^63).
    #[error(transparent)]
    Restore(#[from] im_proto::RestoreError),
}

impl<R: Runtime + Default> Default for ClientBuilder<R> {
    fn default() -> Self {
        ClientBuilder::with_runtime(R::default())
    }
}

impl<R: Runtime> ClientBuilder<R> {
    /// A builder for clients driven by `runtime` (a handle to your own executor, say);
    /// [`Client::builder`] uses the runtime's default.
    pub fn with_runtime(runtime: R) -> Self {
        ClientBuilder {
            runtime,
            settings: Settings::Own(Config::builder()),
            name: None,
            seed: None,
            protocol: None,
            headers: None,
            tls: None,
            event_capacity: 256,
            write_timeout: Duration::from_secs(10),
            #[cfg(feature = "store")]
            store: None,
        }
    }
}

impl<R: Runtime + Default> Client<R> {
    /// Start configuring a client.
    pub fn builder() -> ClientBuilder<R> {
        ClientBuilder::default()
    }
}

impl<R: Runtime> ClientBuilder<R> {
    fn edit(mut self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Self {
        self.settings = self.settings.edit(f);
        self
    }

    /// A server address (`ws://` or `wss://`; Socket.IO also takes `http(s)://host[:port][/ns]`)
    /// as a `&str`, `String`, `&String` or `url::Url`. Call again to add failover endpoints.
    pub fn endpoint(self, url: impl Into<Endpoint>) -> Self {
        let endpoint = url.into();
        self.edit(|c| c.endpoint(endpoint))
    }

    /// The vendor's wire protocol.
    pub fn protocol(mut self, protocol: impl Protocol) -> Self {
        self.protocol = Some(Box::new(protocol));
        self
    }

    /// Settings shared with other clients: build a [`Config`] once, put it in an `Arc`, and
    /// give each client a clone. Clients alike then keep one copy between them (a process with
    /// thousands of clients saves a few hundred bytes each). Endpoints and every setting come
    /// from it; a setting changed after this call gives this client its own copy.
    pub fn config(mut self, config: Arc<Config>) -> Self {
        self.settings = Settings::Shared(config);
        self
    }

    /// How reconnect delays grow and when to give up (R1–R3).
    pub fn reconnect(self, policy: ReconnectPolicy) -> Self {
        self.edit(|c| c.reconnect(policy))
    }

    /// Who keeps the link alive and how a dead one is noticed (H1–H4).
    pub fn heartbeat(self, mode: HeartbeatMode) -> Self {
        self.edit(|c| c.heartbeat(mode))
    }

    /// Bounds on what a server or the application can make the client hold (Q1).
    pub fn limits(self, limits: Limits) -> Self {
        self.edit(|c| c.limits(limits))
    }

    /// Time from starting a connect to the open WebSocket. Default 10 s.
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.edit(|c| c.connect_timeout(d))
    }

    /// Time from the open WebSocket to the protocol's `Ready`. Default 10 s.
    pub fn handshake_timeout(self, d: Duration) -> Self {
        self.edit(|c| c.handshake_timeout(d))
    }

    /// How long a message may wait in the outbox; `None` (the default) until close.
    pub fn outbox_ttl(self, ttl: Option<Duration>) -> Self {
        self.edit(|c| c.outbox_ttl(ttl))
    }

    /// HTTP 401/403 to the upgrade: retry (the default; the `headers` closure may bring fresh
    /// credentials) or close (see [`OnAuthRefusal`]).
    pub fn on_auth_refusal(self, policy: OnAuthRefusal) -> Self {
        self.edit(|c| c.on_auth_refusal(policy))
    }

    /// Q3: how long a message sent for an ack waits for it before a retry (see
    /// [`Config::ack_timeout`]).
    pub fn ack_timeout(self, d: Duration) -> Self {
        self.edit(|c| c.ack_timeout(d))
    }

    /// Q3: retries after an ack timeout before `Undelivered { AckTimeout }`.
    pub fn ack_retries(self, retries: u32) -> Self {
        self.edit(|c| c.ack_retries(retries))
    }

    /// A name for this client in the logs (the `name` field of its span), beside the id every
    /// client gets. Never put a credential here: logs are not secret.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Seed the reconnect jitter (reproducible runs). By default a random seed is drawn.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Request headers (credentials, tokens), produced by `f` on every (re)connect so that
    /// expiring tokens can be refreshed. Values are never logged. Not in a browser, which
    /// sends no headers of a page's choosing with a WebSocket upgrade.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn headers(
        mut self,
        f: impl Fn() -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.headers = Some(Arc::new(f));
        self
    }

    /// TLS configuration for `wss://` (build it with the re-exported [`rustls`]). Default:
    /// [`default_tls`](crate::default_tls), which follows the crate's features.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// How many events wait for the reader before the client stops reading the socket
    /// (backpressure) and holds new messages in the outbox (Q7: `send` says `OutboxFull` once
    /// it is full, until the reader catches up). Default 256; anything above `u32::MAX` counts
    /// as `u32::MAX`.
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }

    /// How long a write may stall before the connection is declared broken. Default 10 s.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Q5: keep every accepted message in `store` until its fate is reported, so that a
    /// process killed with messages in flight sends them after it starts again on the same
    /// store: they come back first, as `Event::Restored`, under their old ids and keys. See
    /// `im_store` for the write policies and what each costs.
    #[cfg(feature = "store")]
    pub fn store(mut self, store: im_store::Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Start the client: one task on the runtime, connecting at once. Never panics: a missing
    /// runtime is [`BuildError::Spawn`].
    pub fn connect(self) -> Result<(Client<R>, Events), BuildError> {
        let protocol = self.protocol.ok_or(BuildError::NoProtocol)?;
        if self.event_capacity == 0 {
            return Err(BuildError::ZeroEventCapacity);
        }
        let config = match self.settings {
            Settings::Shared(config) => {
                config.validate()?;
                config
            }
            Settings::Own(builder) => {
                let mut config = builder.build()?;
                config.endpoints.shrink_to_fit();
                Arc::new(config)
            }
        };
        if !R::PING_FRAMES && matches!(config.heartbeat, HeartbeatMode::WebSocketPing { .. }) {
            return Err(BuildError::PingFramesUnsupported);
        }
        // Each client has its own seed (R1, and its idempotency keys), whatever it shares: a
        // seed in shared settings is not used.
        let seed = self.seed.unwrap_or_else(random_seed);
        let dialer = Dialer {
            #[cfg(not(target_arch = "wasm32"))]
            tls: self.tls.or_else(|| tls::default_tls().ok()),
            #[cfg(target_arch = "wasm32")]
            tls: self.tls,
            headers: self.headers,
            max_frame_bytes: config.limits.max_frame_bytes,
        };
        let id = next_id();
        let span = tracing::info_span!(
            "im_client",
            id,
            name = tracing::field::Empty,
            vendor = protocol.name()
        );
        if let Some(name) = &self.name {
            span.record("name", name.as_str());
        }
        let start = self.runtime.now();
        let mut core = im_proto::Client::with_seed(config, seed, protocol, start)?;
        #[cfg(feature = "store")]
        let durable = match self.store {
            Some(store) => {
                span.in_scope(|| restore(&store, &mut core, start))?;
                Some(Box::new(crate::durable::Durable::new(store)))
            }
            None => None,
        };
        span.in_scope(|| core.connect(start));
        #[allow(unused_mut)]
        let mut conn = Conn::new(
            self.runtime,
            core,
            dialer,
            self.event_capacity,
            self.write_timeout,
        );
        #[cfg(feature = "store")]
        {
            conn.durable = durable;
        }
        let shared = driver::spawn(conn, id, span)?;
        Ok((Client::new(shared.clone()), Events::new(shared)))
    }
}

/// Q5: give `core` back what the last run left in `store`, in order, under the old ids and
/// keys, before it connects.
#[cfg(feature = "store")]
fn restore(
    store: &im_store::Store,
    core: &mut im_proto::Client,
    now: im_proto::Instant,
) -> Result<(), BuildError> {
    let stored = store.load()?;
    if !stored.is_empty() {
        tracing::debug!(messages = stored.len(), "restoring the outbox");
    }
    for message in stored {
        core.restore(now, message.id, message.key, message.message)?;
    }
    Ok(())
}

/// Client ids: 1, 2, 3, … in the order clients are built in this process.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A random seed from the OS-seeded hasher keys, without another dependency.
#[cfg(not(target_arch = "wasm32"))]
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x696d);
    h.finish()
}

/// A random seed from the browser's `crypto.getRandomValues`: std's hasher keys are constant
/// there, which would give every page the same jitter and send them back to a restarted server
/// in step (R1).
#[cfg(target_arch = "wasm32")]
fn random_seed() -> u64 {
    // `getrandom` fails only where the page has no `crypto`; a clock-derived seed still spreads
    // pages that loaded at different moments.
    getrandom::u64().unwrap_or_else(|_| {
        let t = web_time::SystemTime::now()
            .duration_since(web_time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ 0x696d
    })
}
