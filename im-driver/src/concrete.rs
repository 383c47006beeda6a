//! The concrete `Client` and `ClientBuilder` of a runtime crate, written once here.
//!
//! `im_tokio::Client` is a type of its own, with every method on its documentation page, rather
//! than an alias of `im_driver::Client<Tokio>` whose methods live in another crate's docs. A
//! runtime crate expands [`runtime_client!`](crate::runtime_client) with its runtime type.

/// Define `Client` and `ClientBuilder` for the runtime `$runtime` in the calling crate.
#[doc(hidden)]
#[macro_export]
macro_rules! runtime_client {
    ($runtime:ty) => {
        /// A connection to a messaging vendor: connect, subscribe, send; events arrive on the
        /// [`Events`] stream returned with it.
        ///
        /// Cheap to clone; all clones drive the same connection, from any task. When the last
        /// clone is dropped the client closes as if [`close`](Client::close) was called.
        /// Every message sent ends in exactly one of [`Event::Sent`], [`Event::Acked`] or
        /// [`Event::Undelivered`], naming the [`SendId`] `send` returned.
        #[derive(Clone)]
        pub struct Client($crate::Client<$runtime>);

        impl ::std::fmt::Debug for Client {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl Client {
            /// Start configuring a client; only an endpoint and a protocol are required.
            pub fn builder() -> ClientBuilder {
                ClientBuilder($crate::ClientBuilder::default())
            }

            /// Queue a message; it goes out as soon as the connection is ready, in order
            /// (offline, it waits in the bounded outbox). The returned id reappears in
            /// `Sent`, `Acked` or `Undelivered`.
            pub fn send(&self, message: OutgoingMessage) -> Result<SendId, SendError> {
                self.0.send(message)
            }

            /// Send a text message to `channel`.
            pub fn send_text(
                &self,
                channel: impl Into<String>,
                text: impl Into<im_proto::Text>,
            ) -> Result<SendId, SendError> {
                self.0.send_text(channel, text)
            }

            /// Send `value` serialized as JSON to `channel`.
            pub fn send_json<T: $crate::__serde::Serialize + ?Sized>(
                &self,
                channel: impl Into<String>,
                value: &T,
            ) -> Result<SendId, SendJsonError> {
                self.0.send_json(channel, value)
            }

            /// Join a channel, now and after every reconnect (S1). `Subscribed` or
            /// `SubscribeRefused` follows.
            pub fn subscribe(&self, channel: &str) -> Result<(), SubscribeError> {
                self.0.subscribe(channel)
            }

            /// Leave a channel. Returns whether it was subscribed.
            pub fn unsubscribe(&self, channel: &str) -> bool {
                self.0.unsubscribe(channel)
            }

            /// Tell the client the network is back: skip the rest of a backoff, or probe a
            /// live link (H4).
            pub fn network_online(&self) {
                self.0.network_online()
            }

            /// Move to another vendor while running; subscriptions, the outbox and the event
            /// stream stay.
            pub fn switch_protocol(
                &self,
                protocol: impl Protocol,
                endpoints: Vec<Endpoint>,
            ) -> Result<(), SwitchError> {
                self.0.switch_protocol(protocol, endpoints)
            }

            /// Where the connection is: connecting, ready, backing off, closed.
            pub fn state(&self) -> State {
                self.0.state()
            }

            /// This client's id in the process (1, 2, … in the order clients were built):
            /// the `id` field of its tracing span.
            pub fn id(&self) -> u64 {
                self.0.id()
            }

            /// Close for good and wait until the connection is shut and the client's task has
            /// ended. Messages never delivered are reported as `Undelivered` before `Closed`.
            pub async fn close(&self) {
                self.0.close().await
            }

            /// Whether the client's task has ended.
            pub fn is_finished(&self) -> bool {
                self.0.is_finished()
            }
        }

        /// Configures and starts a [`Client`]: [`Client::builder`].
        pub struct ClientBuilder($crate::ClientBuilder<$runtime>);

        impl ::std::fmt::Debug for ClientBuilder {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl ::std::default::Default for ClientBuilder {
            fn default() -> Self {
                Client::builder()
            }
        }

        impl ::std::convert::From<$crate::Client<$runtime>> for Client {
            fn from(client: $crate::Client<$runtime>) -> Self {
                Client(client)
            }
        }

        impl ::std::convert::From<Client> for $crate::Client<$runtime> {
            /// The generic handle, for code written over any `im_driver::Runtime`.
            fn from(client: Client) -> Self {
                client.0
            }
        }

        impl ClientBuilder {
            /// A builder for clients driven by `runtime` (say, one holding a handle to your
            /// executor); [`Client::builder`] uses the default.
            pub fn with_runtime(runtime: $runtime) -> Self {
                ClientBuilder($crate::ClientBuilder::with_runtime(runtime))
            }

            /// A server address (`ws://` or `wss://`; Socket.IO also takes
            /// `http(s)://host[:port][/ns]`) as a `&str`, `String`, `&String` or `url::Url`.
            /// Call again to add failover endpoints (R7).
            pub fn endpoint(self, url: impl Into<Endpoint>) -> Self {
                ClientBuilder(self.0.endpoint(url))
            }

            /// The vendor's wire protocol.
            pub fn protocol(self, protocol: impl Protocol) -> Self {
                ClientBuilder(self.0.protocol(protocol))
            }

            /// Settings shared with other clients: build a [`Config`] once, put it in an
            /// `Arc`, give each client a clone; clients alike then keep one copy between them.
            /// A setting changed after this call gives this client its own copy.
            pub fn config(self, config: ::std::sync::Arc<Config>) -> Self {
                ClientBuilder(self.0.config(config))
            }

            /// How reconnect delays grow and when to give up (R1–R3).
            pub fn reconnect(self, policy: ReconnectPolicy) -> Self {
                ClientBuilder(self.0.reconnect(policy))
            }

            /// Who keeps the link alive and how a dead one is noticed (H1–H4).
            pub fn heartbeat(self, mode: HeartbeatMode) -> Self {
                ClientBuilder(self.0.heartbeat(mode))
            }

            /// Bounds on what a server or the application can make the client hold (Q1).
            pub fn limits(self, limits: Limits) -> Self {
                ClientBuilder(self.0.limits(limits))
            }

            /// Time from starting a connect to the open WebSocket. Default 10 s.
            pub fn connect_timeout(self, d: ::std::time::Duration) -> Self {
                ClientBuilder(self.0.connect_timeout(d))
            }

            /// Time from the open WebSocket to the protocol's `Ready`. Default 10 s.
            pub fn handshake_timeout(self, d: ::std::time::Duration) -> Self {
                ClientBuilder(self.0.handshake_timeout(d))
            }

            /// How long a message may wait in the outbox; `None` (the default): until close.
            pub fn outbox_ttl(self, ttl: Option<::std::time::Duration>) -> Self {
                ClientBuilder(self.0.outbox_ttl(ttl))
            }

            /// HTTP 401/403 to the upgrade: retry (the default) or close.
            pub fn on_auth_refusal(self, policy: OnAuthRefusal) -> Self {
                ClientBuilder(self.0.on_auth_refusal(policy))
            }

            /// Q3: how long a message sent for an ack waits for it before a retry.
            pub fn ack_timeout(self, d: ::std::time::Duration) -> Self {
                ClientBuilder(self.0.ack_timeout(d))
            }

            /// Q3: retries after an ack timeout before `Undelivered { AckTimeout }`.
            pub fn ack_retries(self, retries: u32) -> Self {
                ClientBuilder(self.0.ack_retries(retries))
            }

            /// A name for this client in the logs (the `name` field of its span). Never a
            /// credential: logs are not secret.
            pub fn name(self, name: impl Into<String>) -> Self {
                ClientBuilder(self.0.name(name))
            }

            /// Seed the reconnect jitter and the idempotency keys (reproducible runs). By
            /// default a random seed is drawn for each client.
            pub fn seed(self, seed: u64) -> Self {
                ClientBuilder(self.0.seed(seed))
            }

            /// Request headers (credentials, tokens), produced by `f` on every (re)connect so
            /// that expiring tokens can be refreshed. Values are never logged. Not in a
            /// browser, which sends no headers of a page's choosing with a WebSocket upgrade.
            #[cfg(not(target_arch = "wasm32"))]
            pub fn headers(
                self,
                f: impl Fn() -> Vec<(String, String)> + Send + Sync + 'static,
            ) -> Self {
                ClientBuilder(self.0.headers(f))
            }

            /// TLS configuration for `wss://`, built with the re-exported [`rustls`]. Default:
            /// [`default_tls`], which follows the crate's features.
            #[cfg(not(target_arch = "wasm32"))]
            pub fn tls(self, config: ::std::sync::Arc<rustls::ClientConfig>) -> Self {
                ClientBuilder(self.0.tls(config))
            }

            /// How many events wait for the reader before the client stops reading the socket
            /// (backpressure). Default 256.
            pub fn event_capacity(self, n: usize) -> Self {
                ClientBuilder(self.0.event_capacity(n))
            }

            /// How long a write may stall before the connection counts as broken. Default
            /// 10 s.
            pub fn write_timeout(self, d: ::std::time::Duration) -> Self {
                ClientBuilder(self.0.write_timeout(d))
            }

            $crate::__store_method!();

            /// Start the client: one task on the runtime, connecting at once. Never panics: a
            /// missing runtime is [`BuildError::Spawn`].
            pub fn connect(self) -> Result<(Client, Events), BuildError> {
                let (client, events) = self.0.connect()?;
                Ok((Client(client), events))
            }
        }
    };
}

/// `ClientBuilder::store`, in a runtime crate's builder when im-driver has the feature `store`
/// (decided here: the runtime crate's own features are not the driver's).
#[cfg(feature = "store")]
#[doc(hidden)]
#[macro_export]
macro_rules! __store_method {
    () => {
        /// Q5: keep every accepted message in `store` until its fate is reported, so that a
        /// process killed with messages in flight sends them after it starts again on the same
        /// store: they come back first, as [`Event::Restored`], under their old ids and keys.
        /// [`WritePolicy`] says what each write policy keeps and costs.
        pub fn store(self, store: $crate::im_store::Store) -> Self {
            ClientBuilder(self.0.store(store))
        }
    };
}

#[cfg(not(feature = "store"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __store_method {
    () => {};
}
