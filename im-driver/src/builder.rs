//! Configuring and starting a client.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use im_proto::{
    Config, ConfigBuilder, ConfigError, Endpoint, HeartbeatMode, Limits, Protocol, ReconnectPolicy,
};

use crate::client::{Client, Events};
use crate::driver;
use crate::runtime::Runtime;
use crate::transport::{self, Dialer, HeaderFn};

/// Builds a [`Client`]. Only an endpoint and a protocol are required.
pub struct ClientBuilder<R> {
    runtime: R,
    config: ConfigBuilder,
    seed: Option<u64>,
    protocol: Option<Box<dyn Protocol>>,
    headers: Option<HeaderFn>,
    tls: Option<Arc<rustls::ClientConfig>>,
    event_capacity: usize,
    write_timeout: Duration,
    max_frame_bytes: usize,
}

impl<R: Runtime> std::fmt::Debug for ClientBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("runtime", &self.runtime)
            .field("protocol", &self.protocol.as_ref().map(|p| p.name()))
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
            config: Config::builder(),
            seed: None,
            protocol: None,
            headers: None,
            tls: None,
            event_capacity: 256,
            write_timeout: Duration::from_secs(10),
            max_frame_bytes: Limits::default().max_frame_bytes,
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
    /// A server address (`ws://` or `wss://`; Socket.IO also takes `http(s)://host[:port][/ns]`).
    /// Call again to add failover endpoints.
    pub fn endpoint(mut self, url: impl Into<Endpoint>) -> Self {
        self.config = self.config.endpoint(url);
        self
    }

    /// The vendor's wire protocol.
    pub fn protocol(mut self, protocol: impl Protocol) -> Self {
        self.protocol = Some(Box::new(protocol));
        self
    }

    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config = self.config.reconnect(policy);
        self
    }

    pub fn heartbeat(mut self, mode: HeartbeatMode) -> Self {
        self.config = self.config.heartbeat(mode);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.max_frame_bytes = limits.max_frame_bytes;
        self.config = self.config.limits(limits);
        self
    }

    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config = self.config.connect_timeout(d);
        self
    }

    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.config = self.config.handshake_timeout(d);
        self
    }

    pub fn outbox_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.config = self.config.outbox_ttl(ttl);
        self
    }

    /// HTTP 401/403 to the upgrade: retry (the default; the `headers` closure may bring fresh
    /// credentials) or close (see [`OnAuthRefusal`](im_proto::OnAuthRefusal)).
    pub fn on_auth_refusal(mut self, policy: im_proto::OnAuthRefusal) -> Self {
        self.config = self.config.on_auth_refusal(policy);
        self
    }

    /// Q3: how long a message sent for an ack waits for it before a retry (see
    /// [`Config::ack_timeout`](im_proto::Config::ack_timeout)).
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config = self.config.ack_timeout(d);
        self
    }

    /// Q3: retries after an ack timeout before `Undelivered { AckTimeout }`.
    pub fn ack_retries(mut self, retries: u32) -> Self {
        self.config = self.config.ack_retries(retries);
        self
    }

    /// Seed the reconnect jitter (reproducible runs). By default a random seed is drawn.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Request headers (credentials, tokens), produced by `f` on every (re)connect so that
    /// expiring tokens can be refreshed. Values are never logged.
    pub fn headers(
        mut self,
        f: impl Fn() -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.headers = Some(Arc::new(f));
        self
    }

    /// TLS configuration for `wss://`. Default: rustls with the webpki roots, verification on.
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// How many events wait for the reader before the client stops reading the socket
    /// (backpressure). Default 256.
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }

    /// How long a write may stall before the connection is declared broken. Default 10 s.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Start the client: one task on the runtime, connecting at once.
    ///
    /// # Panics
    /// Where the runtime cannot spawn (tokio: outside a runtime).
    pub fn connect(self) -> Result<(Client<R>, Events), BuildError> {
        let protocol = self.protocol.ok_or(BuildError::NoProtocol)?;
        if self.event_capacity == 0 {
            return Err(BuildError::ZeroEventCapacity);
        }
        let mut config = self.config.build()?;
        let seed = self.seed.unwrap_or_else(random_seed);
        // Each client has its own seed (R1, and its idempotency keys); the settings it shares
        // carry none.
        config.seed = None;
        config.endpoints.shrink_to_fit();
        let config = shared_config(config);
        let dialer = Dialer {
            tls: self.tls.unwrap_or_else(transport::default_tls),
            headers: self.headers,
            max_frame_bytes: self.max_frame_bytes,
        };
        let start = self.runtime.now();
        let mut core = im_proto::Client::with_seed(config, seed, protocol, start)?;
        core.connect(start);
        let (capacity, write_timeout) = (self.event_capacity, self.write_timeout);
        let shared = driver::spawn(self.runtime, core, dialer, capacity, write_timeout);
        Ok((Client::new(shared.clone()), Events::new(shared)))
    }
}

/// The settings of the client last built, if they are still in use and equal to `config`,
/// else `config`. Clients opened in a row with the same settings (endpoints included) share one
/// read-only copy, where most of a process's clients are alike (docs/PERFORMANCE.md).
/// Remembered weakly: the settings are dropped with their last client (their block is freed
/// when the next client is built).
fn shared_config(config: Config) -> Arc<Config> {
    static LAST: Mutex<Weak<Config>> = Mutex::new(Weak::new());
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = last.upgrade() {
        if *existing == config {
            return existing;
        }
    }
    let config = Arc::new(config);
    *last = Arc::downgrade(&config);
    config
}

/// A random seed from the OS-seeded hasher keys, without another dependency.
fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x696d);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Config {
        Config::builder().endpoint(url).build().unwrap()
    }

    // The only test in this crate that builds configurations through `shared_config`.
    #[test]
    fn clients_built_alike_share_their_settings_and_only_then() {
        let a = shared_config(settings("ws://a.example/ws"));
        let b = shared_config(settings("ws://a.example/ws"));
        assert!(Arc::ptr_eq(&a, &b), "equal settings, one copy");
        let c = shared_config(settings("ws://c.example/ws"));
        assert!(!Arc::ptr_eq(&a, &c), "another endpoint, another copy");
        assert_eq!(c.endpoints[0].url(), "ws://c.example/ws");
        let d = shared_config(settings("ws://a.example/ws"));
        assert!(
            !Arc::ptr_eq(&a, &d),
            "only the last settings are remembered"
        );
        assert_eq!(*a, *d);
        drop((a, b, d));
        let e = Config::builder()
            .endpoint("ws://c.example/ws")
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let e = shared_config(e);
        assert!(!Arc::ptr_eq(&c, &e), "another timeout, another copy");
        assert_eq!(e.connect_timeout, Duration::from_secs(3));
    }
}
