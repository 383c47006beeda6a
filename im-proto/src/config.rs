//! Validated configuration: reconnect policy, heartbeat mode, timeouts and limits.
//!
//! Every default below states why it is that number; change them with [`ConfigBuilder`].

use std::time::Duration;

use crate::transport::Endpoint;

/// How reconnect delays grow (rules R1–R3). Start from the default and change what you need:
/// `ReconnectPolicy::default().initial(Duration::from_millis(500)).max_attempts(Some(10))`;
/// [`ConfigBuilder::build`] checks the result.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// `b_0`, the wait after the first failure.
    pub initial: Duration,
    /// `b_n = min(max_delay, initial · multiplier^n)`.
    pub multiplier: f64,
    pub max_delay: Duration,
    /// `j`: the n-th wait is drawn from `[b_n·(1−j), b_n]`.
    pub jitter: f64,
    /// R2: a connection counts as healthy (the failure counter resets) only after staying
    /// `Ready` this long.
    pub stable_after: Duration,
    /// R3: consecutive failed attempts before giving up; `None` = never give up.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 1 s initial like Socket.IO and reconnecting-websocket: a blip is invisible to a chat user.
    /// Growing ×1.2 to a 5 s cap (Socket.IO's `reconnectionDelayMax`) keeps recovery within a
    /// few seconds of an outage's end while the fleet's attempt rate falls during it; ×1.2
    /// rather than ×1.5 because a fleet's arrivals after an outage vary in density by
    /// `(m−1)/ln m` across one wait, which a larger multiplier makes too uneven for a herd
    /// bound of 1.5× (figures in docs/PERFORMANCE.md), at the cost of more attempts. ±50 %
    /// jitter (Socket.IO's `randomizationFactor`), one phase per outage (R1,
    /// `backoff::delay`), spreads a fleet whenever its outage ends (the herd test sweeps 0–30 s). 5 s stability like reconnecting-websocket's
    /// `minUptime`: a server that accepts and drops at once must not reset the backoff. Never
    /// give up by default: a chat client should outlive any outage unless told otherwise.
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_secs(1),
            multiplier: 1.2,
            max_delay: Duration::from_secs(5),
            jitter: 0.5,
            stable_after: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// `b_0`, the wait after the first failure (R1).
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// How much each wait grows over the last (R1); at least 1.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The longest wait (R1).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The share of each wait drawn at random, in `[0, 1]` (R1).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// How long a connection must stay `Ready` to count as healthy (R2).
    pub fn stable_after(mut self, after: Duration) -> Self {
        self.stable_after = after;
        self
    }

    /// Consecutive failures before giving up (R3); `None` never gives up.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }
}

/// Who keeps the link alive and how a dead one is noticed (rules H1–H4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeartbeatMode {
    /// The client sends the protocol's heartbeat every `interval` (H1); no inbound traffic for
    /// `interval + timeout` means the link is dead (H2). The seed, MQTT PINGREQ.
    ClientDriven {
        interval: Duration,
        timeout: Duration,
    },
    /// The server pings every `interval`; no inbound traffic for `interval + timeout` means the
    /// link is dead. Socket.IO v4, Centrifugo.
    ServerDriven {
        interval: Duration,
        timeout: Duration,
    },
    /// Like `ClientDriven`, with WebSocket ping frames instead of protocol frames.
    WebSocketPing {
        interval: Duration,
        timeout: Duration,
    },
    /// No heartbeat and no dead-link detection: the transport's own errors are all there is.
    Off,
}

impl HeartbeatMode {
    /// How long silence may last before the link is declared dead (H2).
    pub fn dead_after(&self) -> Option<Duration> {
        match *self {
            HeartbeatMode::ClientDriven { interval, timeout }
            | HeartbeatMode::ServerDriven { interval, timeout }
            | HeartbeatMode::WebSocketPing { interval, timeout } => {
                Some(interval.saturating_add(timeout))
            }
            HeartbeatMode::Off => None,
        }
    }

    /// How often the client itself sends a heartbeat, if it does (H1).
    pub fn send_every(&self) -> Option<Duration> {
        match *self {
            HeartbeatMode::ClientDriven { interval, .. }
            | HeartbeatMode::WebSocketPing { interval, .. } => Some(interval),
            _ => None,
        }
    }

    /// How long a probe (H4) may wait for an answer.
    pub fn timeout(&self) -> Option<Duration> {
        match *self {
            HeartbeatMode::ClientDriven { timeout, .. }
            | HeartbeatMode::ServerDriven { timeout, .. }
            | HeartbeatMode::WebSocketPing { timeout, .. } => Some(timeout),
            HeartbeatMode::Off => None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            HeartbeatMode::ClientDriven { interval, timeout }
            | HeartbeatMode::ServerDriven { interval, timeout }
            | HeartbeatMode::WebSocketPing { interval, timeout } => {
                nonzero("heartbeat interval", interval)?;
                nonzero("heartbeat timeout", timeout)
            }
            HeartbeatMode::Off => Ok(()),
        }
    }
}

impl Default for HeartbeatMode {
    /// 25 s like Socket.IO's `pingInterval`: under the 30 s idle timeout of the stingiest NATs
    /// and proxies. 10 s to answer: generous for a mobile link, yet a dead link is noticed within
    /// 35 s.
    fn default() -> Self {
        HeartbeatMode::ClientDriven {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What to do when the server refuses the credentials: HTTP 401 or 403 to the WebSocket upgrade.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnAuthRefusal {
    /// Back off and try again, like any failed attempt (R1, R3), reported as
    /// `Cause::Refused { status }`: right when the credentials come from a closure that can
    /// refresh them (the drivers' `headers`), or when the refusal may pass.
    #[default]
    Retry,
    /// Close for good: `Closed { reason: Refused { status } }`. Nothing is retried with
    /// credentials the server has refused.
    Close,
}

/// Bounds on everything a peer or the user can make the client hold. Start from the default:
/// `Limits::default().outbox_messages(10)`; [`ConfigBuilder::build`] refuses a zero.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest inbound frame; larger ones are reported as an error and discarded. 1 MiB: far above
    /// any chat message, far below what would hurt a phone.
    pub max_frame_bytes: usize,
    /// Largest outgoing message body accepted by `send`. 1 MiB, for symmetry.
    pub max_message_bytes: usize,
    /// Messages the outbox holds (queued plus awaiting an ack). 1,000: a minute of heavy chat.
    pub outbox_messages: usize,
    /// Bytes the outbox holds. 4 MiB.
    pub outbox_bytes: usize,
    /// Channels in the desired subscription set. 1,024.
    pub max_subscriptions: usize,
    /// Endpoints, configured plus discovered (R7). 32: a large cluster.
    pub max_endpoints: usize,
    /// JSON nesting a decoder accepts. 32: chat payloads are shallow; serde_json's own guard is
    /// 128 levels, and depth is what hostile input uses to burn stack and time.
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1 << 20,
            max_message_bytes: 1 << 20,
            outbox_messages: 1_000,
            outbox_bytes: 4 << 20,
            max_subscriptions: 1_024,
            max_endpoints: 32,
            max_json_depth: 32,
        }
    }
}

impl Limits {
    /// Largest inbound frame.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// Largest outgoing message body `send` accepts.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Messages the outbox holds (Q1).
    pub fn outbox_messages(mut self, messages: usize) -> Self {
        self.outbox_messages = messages;
        self
    }

    /// Bytes the outbox holds (Q1).
    pub fn outbox_bytes(mut self, bytes: usize) -> Self {
        self.outbox_bytes = bytes;
        self
    }

    /// Channels in the desired subscription set.
    pub fn max_subscriptions(mut self, channels: usize) -> Self {
        self.max_subscriptions = channels;
        self
    }

    /// Endpoints, configured plus discovered (R7).
    pub fn max_endpoints(mut self, endpoints: usize) -> Self {
        self.max_endpoints = endpoints;
        self
    }

    /// JSON nesting a decoder accepts.
    pub fn max_json_depth(mut self, depth: usize) -> Self {
        self.max_json_depth = depth;
        self
    }
}

/// Everything the state machine needs to know up front. Built and validated by [`Config::builder`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    pub endpoints: Vec<Endpoint>,
    pub reconnect: ReconnectPolicy,
    pub heartbeat: HeartbeatMode,
    /// Time from `Connect` to `Opened`. 10 s: a TCP + TLS + WebSocket handshake on a bad mobile
    /// link rarely takes longer, and a SYN into a black hole must not stall reconnecting.
    pub connect_timeout: Duration,
    /// Time from `Opened` to the protocol's `Ready`. 10 s, for the same reason.
    pub handshake_timeout: Duration,
    /// H4: an input arriving this much later than the deadline the client asked for means the
    /// process was frozen (sleep, SIGSTOP, VM pause); the link is probed instead of trusted.
    /// 5 s: far beyond scheduler jitter, well under a heartbeat interval.
    pub clock_jump_threshold: Duration,
    /// Default time a message may wait in the outbox; `None` = until close.
    pub outbox_ttl: Option<Duration>,
    /// Q3: how long a message sent for an ack waits for it before it is retransmitted (or, out
    /// of retries, reported `Undelivered { AckTimeout }`). 10 s, the heartbeat's answer time: a
    /// server that answers heartbeats but not a message within that has lost it or never acks.
    pub ack_timeout: Duration,
    /// Q3: retransmissions after an ack timeout, on the live connection, with the same
    /// idempotency key. 2, so a silent server releases a message after 30 s by default
    /// (socket.io-client's `retries`; retransmissions after a reconnect do not count).
    pub ack_retries: u32,
    /// R8: the longest "reconnect not before" a server may impose; a longer hint is applied at
    /// this and reported (`ReportedError::ServerHintCapped`). 5 minutes: a deploy's worth, while a
    /// hostile or buggy number cannot park a client for years.
    pub max_server_delay: Duration,
    /// HTTP 401/403 to the upgrade: retry (the default) or close (see [`OnAuthRefusal`]).
    pub on_auth_refusal: OnAuthRefusal,
    pub limits: Limits,
    /// Seed of the jitter generator and of the idempotency keys' prefix: same seed, same delays
    /// and keys. [`Client::new`](crate::Client::new) refuses a config without one: keys must
    /// not repeat across processes, so give each process entropy (the drivers draw it from the
    /// OS); a fixed seed belongs in tests.
    pub seed: Option<u64>,
}

impl Config {
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                endpoints: Vec::new(),
                reconnect: ReconnectPolicy::default(),
                heartbeat: HeartbeatMode::default(),
                connect_timeout: Duration::from_secs(10),
                handshake_timeout: Duration::from_secs(10),
                clock_jump_threshold: Duration::from_secs(5),
                outbox_ttl: None,
                ack_timeout: Duration::from_secs(10),
                ack_retries: 2,
                max_server_delay: Duration::from_secs(300),
                on_auth_refusal: OnAuthRefusal::Retry,
                limits: Limits::default(),
                seed: None,
            },
        }
    }

    /// Check every field; the builder calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let r = &self.reconnect;
        nonzero("reconnect initial delay", r.initial)?;
        nonzero("stable_after", r.stable_after)?;
        if r.max_delay < r.initial {
            return Err(ConfigError::MaxBelowInitial {
                initial: r.initial,
                max_delay: r.max_delay,
            });
        }
        if !(r.multiplier >= 1.0 && r.multiplier.is_finite()) {
            return Err(ConfigError::Multiplier(r.multiplier));
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            return Err(ConfigError::Jitter(r.jitter));
        }
        if r.max_attempts == Some(0) {
            return Err(ConfigError::ZeroMaxAttempts);
        }
        self.heartbeat.validate()?;
        nonzero("connect timeout", self.connect_timeout)?;
        nonzero("handshake timeout", self.handshake_timeout)?;
        nonzero("clock jump threshold", self.clock_jump_threshold)?;
        if let Some(ttl) = self.outbox_ttl {
            nonzero("outbox ttl", ttl)?;
        }
        nonzero("ack timeout", self.ack_timeout)?;
        nonzero("max server delay", self.max_server_delay)?;
        let l = &self.limits;
        for (name, v) in [
            ("max_frame_bytes", l.max_frame_bytes),
            ("max_message_bytes", l.max_message_bytes),
            ("outbox_messages", l.outbox_messages),
            ("outbox_bytes", l.outbox_bytes),
            ("max_subscriptions", l.max_subscriptions),
            ("max_endpoints", l.max_endpoints),
            ("max_json_depth", l.max_json_depth),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.endpoints.len() > l.max_endpoints {
            return Err(ConfigError::TooManyEndpoints {
                given: self.endpoints.len(),
                max: l.max_endpoints,
            });
        }
        Ok(())
    }
}

fn nonzero(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::ZeroDuration(field))
    } else {
        Ok(())
    }
}

/// A configuration the client cannot run with.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no endpoint configured")]
    NoEndpoints,
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    #[error("reconnect max_delay ({max_delay:?}) is below the initial delay ({initial:?})")]
    MaxBelowInitial {
        initial: Duration,
        max_delay: Duration,
    },
    #[error("reconnect multiplier {0} must be a finite number >= 1")]
    Multiplier(f64),
    #[error("jitter {0} is outside [0, 1]")]
    Jitter(f64),
    #[error("max_attempts of 0 would never connect; use None for no limit")]
    ZeroMaxAttempts,
    #[error("limit {0} must be greater than zero")]
    ZeroLimit(&'static str),
    #[error("{given} endpoints configured, the limit is {max}")]
    TooManyEndpoints { given: usize, max: usize },
    #[error(
        "no seed: give each process entropy (idempotency keys must not repeat across processes)"
    )]
    NoSeed,
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) validates.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

/// Change a configuration: a builder holding its settings, checked again by `build`.
impl From<Config> for ConfigBuilder {
    fn from(config: Config) -> Self {
        ConfigBuilder { config }
    }
}

impl ConfigBuilder {
    pub fn endpoint(mut self, endpoint: impl Into<Endpoint>) -> Self {
        self.config.endpoints.push(endpoint.into());
        self
    }

    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.config.reconnect = policy;
        self
    }

    pub fn heartbeat(mut self, mode: HeartbeatMode) -> Self {
        self.config.heartbeat = mode;
        self
    }

    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.config.handshake_timeout = d;
        self
    }

    pub fn clock_jump_threshold(mut self, d: Duration) -> Self {
        self.config.clock_jump_threshold = d;
        self
    }

    pub fn outbox_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.config.outbox_ttl = ttl;
        self
    }

    /// Q3: how long to wait for a server's ack before retrying (see [`Config::ack_timeout`]).
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = d;
        self
    }

    /// Q3: retransmissions after an ack timeout before `Undelivered { AckTimeout }`.
    pub fn ack_retries(mut self, retries: u32) -> Self {
        self.config.ack_retries = retries;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The seed of the jitter and of the idempotency keys (see [`Config::seed`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// HTTP 401/403 to the upgrade: retry or close (see [`OnAuthRefusal`]).
    pub fn on_auth_refusal(mut self, policy: OnAuthRefusal) -> Self {
        self.config.on_auth_refusal = policy;
        self
    }

    /// R8: the ceiling on a server's "reconnect not before" (see [`Config::max_server_delay`]).
    pub fn max_server_delay(mut self, d: Duration) -> Self {
        self.config.max_server_delay = d;
        self
    }

    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigBuilder {
        Config::builder().endpoint("ws://127.0.0.1:1/ws")
    }

    #[test]
    fn defaults_are_valid() {
        base().build().unwrap();
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        assert_eq!(Config::builder().build(), Err(ConfigError::NoEndpoints));
        let zero_hb = base().heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::ZERO,
            timeout: Duration::from_secs(1),
        });
        assert_eq!(
            zero_hb.build(),
            Err(ConfigError::ZeroDuration("heartbeat interval"))
        );
        let policy = ReconnectPolicy::default().max_delay(Duration::from_millis(10));
        assert!(matches!(
            base().reconnect(policy).build(),
            Err(ConfigError::MaxBelowInitial { .. })
        ));
        for jitter in [-0.1, 1.5, f64::NAN] {
            let policy = ReconnectPolicy::default().jitter(jitter);
            assert!(matches!(
                base().reconnect(policy).build(),
                Err(ConfigError::Jitter(_))
            ));
        }
        let policy = ReconnectPolicy::default().multiplier(0.5);
        assert_eq!(
            base().reconnect(policy).build(),
            Err(ConfigError::Multiplier(0.5))
        );
        let limits = Limits::default().outbox_bytes(0);
        assert_eq!(
            base().limits(limits).build(),
            Err(ConfigError::ZeroLimit("outbox_bytes"))
        );
    }
}
