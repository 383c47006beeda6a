//! The client state machine: one connection at a time, rules R1–R8, H1–H4, Q1–Q4 and S1.
//!
//! Methods are grouped as in quinn-proto: getters, `handle_*` inputs, user mutators, then the
//! `poll_*` drains. Every input takes `now`; nothing here reads a clock or touches a socket.
//! Every deadline lives in one [`TimerTable`]; `handle_timeout` fires the due ones in
//! [`Timer::ORDER`], each in [`Client::on_timer`]. The parts with a life of their own are
//! beside it: the liveness of a ready link ([`link`]), the outbox (`crate::outbox`), a pending
//! vendor switch ([`switch`]) and the queue of outputs (`crate::queue`).

mod attempts;
mod liveness;
mod log;
mod switch;
mod timer;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use web_time::Instant;

use self::attempts::{Attempts, Next};
use self::liveness::{Liveness, Probe};
use self::switch::PendingSwitch;
pub use self::switch::SwitchError;
use self::timer::{Timer, TimerTable};
use crate::backoff::Rng;
use crate::config::{Config, ConfigError, HeartbeatMode, OnAuthRefusal};
use crate::error::{EncodeError, ProtocolError};
use crate::message::{OutgoingMessage, SendId};
use crate::outbox::{generated_key, Entry, Outbox};
use crate::output::{
    Cause, CloseReason, Event, Output, ReportedError, RestoreError, SendError, State,
    SubscribeError, Undelivered,
};
use crate::protocol::{Context, Protocol, ProtocolEvent};
use crate::queue::Outputs;
use crate::transport::{ConnId, Endpoint, Frame, TransportEvent};

/// WebSocket close code for a normal closure. Always sent explicitly: nats-server 2.9 answers a
/// code-less close with the illegal 1005.
pub const CLOSE_NORMAL: u16 = 1000;

/// The sans-IO messaging client. See the crate docs for the driver loop.
pub struct Client {
    /// Only read: clients made with the same settings can share one copy.
    config: Arc<Config>,
    protocol: Box<dyn Protocol>,
    phase: Phase,
    /// Every deadline: the phase's, the outbox's and a pending switch's.
    timers: TimerTable,
    /// R1–R3, R7, R8: failures in a row, the backoff, the endpoint rotation, server hints.
    attempts: Attempts,
    /// Prefix of generated idempotency keys; from the seed, so distinct per client instance.
    /// (A number, formatted when a key is made: an idle client keeps no string for it.)
    tag: u64,
    next_conn: u64,
    next_send: u64,
    /// H2: whether the driver reads the socket (`set_reading`); remembered across connections,
    /// so a link that becomes `Ready` while the driver is not reading is not judged by silence.
    reading: bool,
    outbox: Outbox,
    /// S1: the channels the user wants, whatever the connection is doing.
    desired: BTreeSet<String>,
    /// A vendor switch waiting for the old vendor's acks (see `switch_protocol`); its deadline
    /// is [`Timer::Switch`].
    switching: Option<Box<PendingSwitch>>,
    /// What the driver is to do and the user to hear, in the order it was made.
    outputs: Outputs,
    scratch: Vec<ProtocolEvent>,
}

/// Why the outbox does not take a message ([`Client::admit`]).
enum Refused {
    TooLarge { size: usize, limit: usize },
    Encode(EncodeError),
    Full,
}

/// Where the client is in the life of a connection. Each phase's deadlines are in the timer
/// table, stopped whenever the phase is left ([`Client::enter`]).
#[derive(Debug)]
enum Phase {
    Idle,
    /// The WebSocket is opening ([`Timer::Connect`]).
    Connecting {
        conn: ConnId,
        endpoint: Endpoint,
    },
    /// The protocol's handshake runs ([`Timer::Handshake`]).
    Handshaking {
        conn: ConnId,
        endpoint: Endpoint,
        heartbeat: HeartbeatMode,
        /// The server said it restored the session (`ProtocolEvent::Resumed`).
        recovered: bool,
    },
    /// Messages flow ([`Timer::Stable`], [`Timer::DeadLink`], [`Timer::Heartbeat`]).
    Ready {
        conn: ConnId,
        link: Liveness,
        /// R2: the connection has counted as healthy (the `Stable` timer fired).
        stable: bool,
    },
    /// R1: waiting for the next attempt ([`Timer::Backoff`]; unarmed: parked, a wait too long
    /// to represent, until `network_online`).
    Backoff,
    Closed(CloseReason),
}

impl Client {
    /// A client in `Idle`: call [`connect`](Self::connect) to start. Its jitter (R1) and its
    /// idempotency keys come from `config.seed`, which must be set: the keys must not repeat
    /// across processes, so give each process entropy (a driver draws it from the OS).
    ///
    /// The configuration is checked again here (its fields are public): an invalid one, or one
    /// without a seed, is an error. It is only read, so clients made with the same settings can
    /// share one (`Arc<Config>`; a `Config` converts): see [`with_seed`](Self::with_seed).
    pub fn new(
        config: impl Into<Arc<Config>>,
        protocol: Box<dyn Protocol>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        let seed = config.seed.ok_or(ConfigError::NoSeed)?;
        Self::with_seed(config, seed, protocol, now)
    }

    /// A client in `Idle` with its own `seed`; `config.seed` is not used. For a driver that
    /// opens many clients with one shared configuration: clients that shared its seed would
    /// share their backoff draws too, and a fleet's reconnects would arrive together (R1).
    pub fn with_seed(
        mut config: Arc<Config>,
        seed: u64,
        protocol: Box<dyn Protocol>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = Rng::new(seed);
        let tag = rng.next_u64();
        if let Some(config) = Arc::get_mut(&mut config) {
            // Every idle connection keeps these: no spare capacity from the builder's pushes.
            config.endpoints.shrink_to_fit();
        }
        let limits = &config.limits;
        Ok(Client {
            outbox: Outbox::new(limits.outbox_messages, limits.outbox_bytes),
            config,
            protocol,
            phase: Phase::Idle,
            timers: TimerTable::new(now),
            attempts: Attempts::new(rng),
            tag,
            next_conn: 0,
            next_send: 0,
            reading: true,
            desired: BTreeSet::new(),
            switching: None,
            outputs: Outputs::default(),
            scratch: Vec::new(),
        })
    }

    // ----- getters -----

    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Idle => State::Idle,
            Phase::Connecting { .. } => State::Connecting,
            Phase::Handshaking { .. } => State::Handshaking,
            Phase::Ready { .. } => State::Ready,
            Phase::Backoff => State::Backoff,
            Phase::Closed(reason) => State::Closed(reason.clone()),
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// The live transport, if any (R5: never more than one).
    pub fn connection(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Connecting { conn, .. }
            | Phase::Handshaking { conn, .. }
            | Phase::Ready { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// Consecutive failed attempts so far (R1's `n`).
    pub fn failures(&self) -> u32 {
        self.attempts.failures()
    }

    /// Configured plus discovered endpoints (R7), in rotation order.
    pub fn endpoints(&self) -> &[Endpoint] {
        self.attempts.endpoints(&self.config.endpoints)
    }

    /// Messages held (queued plus awaiting ack) and their bytes (Q1).
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    pub fn outbox_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// The id the next accepted [`send`](Self::send) will have: what a durable store files
    /// a message under before handing it to the client.
    pub fn next_send_id(&self) -> SendId {
        SendId(self.next_send)
    }

    /// The idempotency key message `id` carries when it was sent without one (Q3): what a
    /// durable store keeps beside it, so that a restored message goes out under the same key.
    pub fn generated_key(&self, id: SendId) -> String {
        generated_key(self.tag, id)
    }

    /// The desired subscription set (S1).
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.desired.iter().map(String::as_str)
    }

    pub fn protocol_name(&self) -> &'static str {
        self.protocol.name()
    }

    /// WebSocket subprotocols the current protocol needs.
    pub fn subprotocols(&self) -> &'static [&'static str] {
        self.protocol.subprotocols()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- inputs -----

    /// Report what happened to connection `conn`. Events for any other generation are stale and
    /// ignored.
    pub fn handle_transport(&mut self, now: Instant, conn: ConnId, event: TransportEvent) {
        if self.connection() != Some(conn) {
            return;
        }
        match event {
            TransportEvent::Opened => self.on_opened(now, conn),
            TransportEvent::Frame(frame) => {
                if matches!(self.phase, Phase::Connecting { .. }) {
                    // A driver that reports a frame first has evidently opened the socket.
                    self.on_opened(now, conn);
                }
                self.on_frame(now, conn, frame);
            }
            TransportEvent::Closed { code, reason } => {
                self.lose_connection(now, Cause::ClosedByPeer { code, reason }, false);
            }
            TransportEvent::Failed(error) => {
                self.lose_connection(now, Cause::Transport(error), false);
            }
            TransportEvent::Refused { status } => {
                let auth = matches!(status, 401 | 403);
                if auth && self.config.on_auth_refusal == OnAuthRefusal::Close {
                    // The attempt is over; there is no socket to close.
                    self.enter(Phase::Idle);
                    self.finish(CloseReason::Refused { status });
                } else {
                    self.lose_connection(now, Cause::Refused { status }, false);
                }
            }
            TransportEvent::Rejected(error) => {
                if let Phase::Ready { link, .. } = &mut self.phase {
                    link.saw_inbound(now, &mut self.timers);
                }
                self.emit(Event::Error(ReportedError::Protocol(error)));
            }
        }
        self.arm_outbox_timers();
    }

    /// Fire every deadline due at or before `now` (the outbox's first, then the connection's:
    /// see `Timer::ORDER` in the source).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(first) = self.timers.next() else {
            return;
        };
        if now < first {
            return;
        }
        // H4: woken far later than asked: the process was frozen, not the link idle.
        let jumped = now.saturating_duration_since(first) > self.config.clock_jump_threshold;
        for timer in Timer::ORDER {
            if self.timers.is_due(timer, now) {
                self.timers.stop(timer);
                self.on_timer(timer, now, jumped);
            }
        }
        self.arm_outbox_timers();
    }

    // ----- user commands -----

    /// Start connecting. Does nothing unless the client is `Idle`.
    pub fn connect(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Idle) {
            self.start_connect(now);
        }
    }

    /// Queue a message (Q1) and transmit it as soon as the connection is `Ready` (Q2).
    pub fn send(&mut self, now: Instant, msg: OutgoingMessage) -> Result<SendId, SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        let size = match self.admit(now, &msg) {
            Ok(size) => size,
            Err(Refused::TooLarge { size, limit }) => {
                return Err(SendError::TooLarge { size, limit })
            }
            Err(Refused::Encode(e)) => return Err(SendError::Encode(e)),
            Err(Refused::Full) => {
                return Err(SendError::OutboxFull {
                    messages: self.outbox.len(),
                    bytes: self.outbox.bytes(),
                    message: Box::new(msg),
                })
            }
        };
        let id = SendId(self.next_send);
        self.next_send += 1;
        let key = msg
            .key
            .clone()
            .unwrap_or_else(|| generated_key(self.tag, id));
        self.hold(now, id, key, msg, size, false);
        Ok(id)
    }

    /// Q5: hold again a message a durable store kept from an earlier run of this client, under
    /// its old `id` and idempotency `key`. Call it for each stored message, in id order, before
    /// anything is sent; later sends are numbered after the last restored id.
    ///
    /// `Event::Restored` announces it. It counts as possibly delivered (the earlier run may
    /// have written it: a redelivery, MQTT's DUP), goes out ahead of every later send (Q2) and
    /// ends in one fate like any send. One this client would refuse today — over its present
    /// limits, or refused by its protocol — is handed back at once as `Undelivered`. A closed
    /// client takes nothing ([`RestoreError::Closed`]).
    pub fn restore(
        &mut self,
        now: Instant,
        id: SendId,
        key: String,
        msg: OutgoingMessage,
    ) -> Result<(), RestoreError> {
        if self.is_closed() {
            return Err(RestoreError::Closed);
        }
        let next = SendId(self.next_send);
        if id < next {
            return Err(RestoreError::OutOfOrder { id, next });
        }
        if id.0 > i64::MAX as u64 {
            return Err(RestoreError::OutOfRange { id });
        }
        self.next_send = id.0 + 1;
        self.outputs.event(Event::Restored {
            id,
            message: Box::new(msg.clone()),
        });
        let reason = match self.admit(now, &msg) {
            Ok(size) => {
                self.hold(now, id, key, msg, size, true);
                return Ok(());
            }
            Err(Refused::TooLarge { .. } | Refused::Full) => Undelivered::OverLimits,
            Err(Refused::Encode(e)) => Undelivered::Encode(e),
        };
        self.outputs.event(Event::Undelivered {
            id,
            message: Box::new(msg),
            reason,
            maybe_delivered: true,
        });
        Ok(())
    }

    /// Add `channel` to the desired set (S1); subscribes now if `Ready`, else on the next `Ready`.
    pub fn subscribe(&mut self, now: Instant, channel: &str) -> Result<(), SubscribeError> {
        if self.is_closed() {
            return Err(SubscribeError::Closed);
        }
        if channel.is_empty() {
            return Err(SubscribeError::EmptyChannel);
        }
        if self.desired.contains(channel) {
            return Ok(());
        }
        let limit = self.config.limits.max_subscriptions;
        if self.desired.len() >= limit {
            return Err(SubscribeError::TooMany { limit });
        }
        self.desired.insert(channel.to_owned());
        if let Phase::Ready { conn, .. } = self.phase {
            self.send_subscribe(now, conn, channel);
        }
        Ok(())
    }

    /// Remove `channel` from the desired set. Returns whether it was there.
    pub fn unsubscribe(&mut self, now: Instant, channel: &str) -> bool {
        if self.is_closed() || !self.desired.remove(channel) {
            return false;
        }
        if let Phase::Ready { conn, .. } = self.phase {
            let result = self.speak(now, conn, |p, cx| {
                cx.all_or_nothing(|cx| p.on_unsubscribe(cx, channel))
            });
            self.subscribe_failed(channel, result);
        }
        true
    }

    /// Close for good (R4): the connection is shut, undelivered messages are handed back (Q4),
    /// `Closed` is the last event and nothing is scheduled afterwards.
    pub fn close(&mut self, now: Instant) {
        self.shut(now, CloseReason::User);
    }

    /// Close for good because the driver cannot go on (its user stopped reading events). Like
    /// [`close`](Self::close), with the given reason.
    pub fn close_with(&mut self, now: Instant, reason: CloseReason) {
        self.shut(now, reason);
    }

    /// The driver stopped (`false`) or resumed (`true`) reading the socket, for backpressure
    /// when the user reads events slowly. While not reading, silence proves nothing, so dead-link
    /// detection (H2) is suspended; on resume the link gets a fresh window. Q7: messages wait
    /// in the outbox meanwhile (each would add its fate to the events the user is behind on),
    /// and ack timeouts wait too (no ack can be read); on resume they go out, in order, and
    /// every ack awaited gets a full `ack_timeout` again.
    pub fn set_reading(&mut self, now: Instant, reading: bool) {
        let resumed = reading && !self.reading;
        self.reading = reading;
        if let Phase::Ready { link, conn, .. } = &mut self.phase {
            link.set_reading(now, reading, &mut self.timers);
            if resumed {
                let conn = *conn;
                self.outbox
                    .renew_ack_deadlines(now, self.config.ack_timeout);
                self.flush_outbox(now, conn);
            }
        }
        self.arm_outbox_timers();
    }

    /// A hint from the platform that the network is back: skip the rest of a backoff wait, or
    /// probe a `Ready` link that may have died with the old network (H4).
    ///
    /// R8 holds: a server's "not before" is never cut short. H2 holds: a probe already out keeps
    /// its deadline (a hint repeated every second cannot postpone a dead link forever).
    pub fn network_online(&mut self, now: Instant) {
        match self.phase {
            Phase::Backoff => match self.attempts.not_before() {
                Some(t) if t > now => self.timers.set(Timer::Backoff, Some(t)),
                _ => self.start_connect(now),
            },
            Phase::Ready { .. } => self.probe(now),
            _ => {}
        }
    }

    /// Move to another vendor while running: the outbox, the desired subscriptions and the
    /// event stream stay; the connection and the protocol are replaced and a connect starts now.
    /// Unacked messages are retransmitted over the new vendor with their idempotency keys.
    pub fn switch_protocol(
        &mut self,
        now: Instant,
        protocol: Box<dyn Protocol>,
        endpoints: Vec<Endpoint>,
    ) -> Result<(), SwitchError> {
        if self.is_closed() {
            return Err(SwitchError::Closed);
        }
        if endpoints.is_empty() {
            return Err(SwitchError::NoEndpoints);
        }
        let max = self.config.limits.max_endpoints;
        if endpoints.len() > max {
            let given = endpoints.len();
            return Err(SwitchError::TooManyEndpoints { given, max });
        }
        let switch = PendingSwitch {
            protocol,
            endpoints,
        };
        match self.phase {
            // Let the old vendor ack what it has before leaving it, so nothing goes to both.
            Phase::Ready { conn, .. } if self.outbox.in_flight_on(conn) => {
                self.switching = Some(Box::new(switch));
                let wait = self.config.handshake_timeout;
                self.timers.set_after(Timer::Switch, now, wait);
            }
            _ => self.switch_now(now, switch),
        }
        self.arm_outbox_timers();
        Ok(())
    }

    // ----- outputs -----

    /// The next thing to do, in the order the client made them; call after every input until
    /// it returns [`Output::Timeout`], which says when to call
    /// [`handle_timeout`](Self::handle_timeout) unless an input comes first.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop() {
            return output;
        }
        // Drained, and the driver is about to wait: an idle connection keeps no scratch space.
        if self.scratch.capacity() > 0 {
            self.scratch = Vec::new();
        }
        Output::Timeout(self.poll_timeout())
    }

    /// The events [`poll_output`](Self::poll_output) would return next, up to the next
    /// instruction, moved into `into` at once; returns how many. The same drain in bulk, for a
    /// driver that hands events over in batches: a buffer moved (a swap when `into` is empty)
    /// rather than a call and a move per event. Interleave it with `poll_output` freely; the
    /// order is the queue's.
    pub fn take_events(&mut self, into: &mut VecDeque<Event>) -> usize {
        self.outputs.take_events(into)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` when nothing is
    /// scheduled (always after `Closed`). The same instant the last drain ended with
    /// ([`Output::Timeout`]), for a driver that needs it again without draining.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ----- timers -----

    /// What each timer does when it fires.
    fn on_timer(&mut self, timer: Timer, now: Instant, jumped: bool) {
        match timer {
            Timer::Expiry => self.expire_outbox(now),
            Timer::AckTimeout => self.retry_unacked(now),
            Timer::Switch => {
                // The old vendor did not ack everything in time: leave it anyway.
                if let Some(switch) = self.switching.take() {
                    self.switch_now(now, *switch);
                }
            }
            Timer::Connect => self.lose_connection(now, Cause::ConnectTimeout, true),
            Timer::Handshake => self.lose_connection(now, Cause::HandshakeTimeout, true),
            Timer::Stable => {
                if let Phase::Ready { stable, .. } = &mut self.phase {
                    // R2: healthy long enough; the next loss starts a fresh backoff.
                    *stable = true;
                    self.attempts.stable();
                }
            }
            Timer::DeadLink => {
                let Phase::Ready { link, .. } = &self.phase else {
                    return;
                };
                if jumped && !link.is_probing() {
                    // H4: the silence may be the process's, not the link's: ask first.
                    self.probe(now);
                } else {
                    // H2: declared dead at the deadline.
                    self.lose_connection(now, Cause::DeadLink, true);
                }
            }
            Timer::Heartbeat => self.send_heartbeat(now),
            Timer::Backoff => self.start_connect(now),
        }
    }

    /// The outbox's deadlines (Q1 TTLs, Q3 acks) follow its contents: armed again at the end
    /// of every input that may have changed them.
    fn arm_outbox_timers(&mut self) {
        if self.is_closed() {
            return;
        }
        if self.outbox.len() == 0 {
            // The common case of a receiving client: nothing to scan.
            self.timers.stop(Timer::Expiry);
            self.timers.stop(Timer::AckTimeout);
            return;
        }
        self.timers.set(Timer::Expiry, self.outbox.next_expiry());
        // Q7: no ack can be read while the driver does not read; none is overdue meanwhile.
        let ack_deadline = self
            .reading
            .then(|| self.outbox.next_ack_deadline())
            .flatten();
        self.timers.set(Timer::AckTimeout, ack_deadline);
    }

    /// Move to `phase`: the deadlines of the one left are stopped (the new one arms its own).
    fn enter(&mut self, phase: Phase) {
        self.timers.stop_all(&Timer::PHASE);
        self.phase = phase;
    }

    // ----- the life of a connection -----

    fn start_connect(&mut self, now: Instant) {
        debug_assert!(self.connection().is_none(), "R5: one transport at a time");
        let conn = ConnId::new(self.next_conn);
        self.next_conn += 1;
        let endpoint = self.attempts.start(&self.config.endpoints);
        let wire = self.protocol.resolve_endpoint(&endpoint);
        self.push_out(Output::Connect {
            conn,
            endpoint: wire.unwrap_or_else(|| endpoint.clone()),
            subprotocols: self.protocol.subprotocols(),
        });
        self.enter(Phase::Connecting { conn, endpoint });
        let timeout = self.config.connect_timeout;
        self.timers.set_after(Timer::Connect, now, timeout);
    }

    fn on_opened(&mut self, now: Instant, conn: ConnId) {
        let Phase::Connecting { endpoint, .. } = &self.phase else {
            return;
        };
        let endpoint = endpoint.clone();
        let heartbeat = self.config.heartbeat;
        self.enter(Phase::Handshaking {
            conn,
            endpoint,
            heartbeat,
            recovered: false,
        });
        let timeout = self.config.handshake_timeout;
        self.timers.set_after(Timer::Handshake, now, timeout);
        self.speak(now, conn, |p, cx| p.on_open(cx));
    }

    fn on_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let limit = self.config.limits.max_frame_bytes;
        if let Phase::Ready { link, .. } = &mut self.phase {
            // H3: any inbound frame proves liveness, one too large to use included.
            link.saw_inbound(now, &mut self.timers);
        }
        let heartbeat = self.heartbeat_mode();
        if frame.len() > limit {
            let size = frame.len();
            let error = ProtocolError::TooLarge { size, limit };
            self.emit(Event::Error(ReportedError::Protocol(error)));
            return;
        }
        match frame {
            // Answered by the driver's WebSocket library; liveness was noted above.
            Frame::Ping(_) => {}
            Frame::Pong(_) => {
                if matches!(heartbeat, HeartbeatMode::WebSocketPing { .. }) {
                    self.on_pong(now);
                }
            }
            frame => {
                let mut events = std::mem::take(&mut self.scratch);
                let mut cx = Context::new(now, heartbeat, &self.config.limits, &mut events)
                    .with_direct(&mut self.outputs);
                if let Err(error) = self.protocol.on_frame(&mut cx, frame) {
                    events.push(ProtocolEvent::Error(error));
                }
                // A message alone went straight to the outputs (`Context::with_direct`).
                if !events.is_empty() {
                    self.apply(now, conn, &mut events);
                }
                self.scratch = events;
            }
        }
    }

    /// Act on what the protocol made of an input, in order.
    fn apply(&mut self, now: Instant, conn: ConnId, events: &mut Vec<ProtocolEvent>) {
        for event in events.drain(..) {
            if self.is_closed() {
                continue;
            }
            let live = self.connection() == Some(conn);
            match event {
                ProtocolEvent::Transmit(frame) if live => {
                    self.push_out(Output::Transmit { conn, frame });
                }
                ProtocolEvent::Ready if live && matches!(self.phase, Phase::Handshaking { .. }) => {
                    self.become_ready(now, conn);
                }
                ProtocolEvent::Resumed if live => {
                    if let Phase::Handshaking { recovered, .. } = &mut self.phase {
                        *recovered = true;
                    }
                }
                ProtocolEvent::Heartbeat(mode) if live => match &mut self.phase {
                    Phase::Handshaking { heartbeat, .. } => *heartbeat = mode,
                    Phase::Ready { link, .. } => {
                        *link = Liveness::start(now, mode, self.reading, &mut self.timers);
                    }
                    _ => {}
                },
                ProtocolEvent::Pong => self.on_pong(now),
                ProtocolEvent::ServerPing => self.emit(Event::Heartbeat { rtt: None }),
                ProtocolEvent::Message(message) => self.emit(Event::Message(message)),
                // An ack for something no longer held (a duplicate) changes nothing.
                ProtocolEvent::Acked(id) if self.outbox.take(id).is_some() => {
                    self.emit(Event::Acked { id });
                    self.maybe_finish_switch(now);
                }
                // Q6: a refusal for something no longer held (acked, expired) changes nothing.
                ProtocolEvent::Refused { id, reason } => {
                    let held = self.outbox.refuse(id, reason, &mut self.outputs);
                    if held {
                        self.maybe_finish_switch(now);
                    }
                }
                ProtocolEvent::Subscribed(channel) => self.emit(Event::Subscribed { channel }),
                ProtocolEvent::SubscribeRefused { channel, reason } => {
                    self.emit(Event::SubscribeRefused { channel, reason })
                }
                ProtocolEvent::Kicked { reason } if live => {
                    self.disconnect_current("kicked");
                    self.emit(Event::Kicked {
                        reason: reason.clone(),
                    });
                    self.finish(CloseReason::Kicked { reason });
                }
                ProtocolEvent::Reconnect { reason, after } if live => {
                    let cap = self.config.max_server_delay;
                    if let Some(asked) = after.filter(|a| *a > cap) {
                        self.emit(Event::Error(ReportedError::ServerHintCapped {
                            asked,
                            applied: cap,
                        }));
                    }
                    self.attempts.server_hint(after.map(|a| a.min(cap)));
                    self.lose_connection(now, Cause::ServerRequested(reason), true);
                }
                ProtocolEvent::Endpoints(found) => {
                    let max = self.config.limits.max_endpoints;
                    let configured = &self.config.endpoints;
                    self.attempts.add_endpoints(found, configured, max);
                }
                ProtocolEvent::Fatal(error) if live => {
                    self.disconnect_current("fatal protocol error");
                    self.emit(Event::Error(ReportedError::Protocol(error.clone())));
                    self.finish(CloseReason::Fatal(error));
                }
                ProtocolEvent::Error(error) => {
                    self.emit(Event::Error(ReportedError::Protocol(error)))
                }
                ProtocolEvent::Gap { reason } => {
                    self.emit(Event::Error(ReportedError::Gap { reason }))
                }
                // Connection-bound events for a connection that ended earlier in this batch, a
                // duplicate ack, a `Ready` outside the handshake.
                _ => {}
            }
        }
    }

    fn become_ready(&mut self, now: Instant, conn: ConnId) {
        let Phase::Handshaking {
            endpoint,
            heartbeat,
            recovered,
            ..
        } = &self.phase
        else {
            return;
        };
        let (endpoint, heartbeat, recovered) = (endpoint.clone(), *heartbeat, *recovered);
        // Q1: what timed out while waiting (or in flight on a lost connection) is not sent.
        self.expire_outbox(now);
        self.enter(Phase::Idle);
        let link = Liveness::start(now, heartbeat, self.reading, &mut self.timers);
        let stable_after = self.config.reconnect.stable_after;
        // A `stable_after` too long to represent leaves the timer unarmed: never stable.
        self.timers.set_after(Timer::Stable, now, stable_after);
        self.phase = Phase::Ready {
            conn,
            link,
            stable: false,
        };
        self.emit(Event::Connected {
            endpoint,
            recovered,
        });
        // S1: every Ready re-establishes the whole desired set.
        let channels: Vec<String> = self.desired.iter().cloned().collect();
        for channel in channels {
            self.send_subscribe(now, conn, &channel);
        }
        // Q2: what waited goes out first, in order.
        self.flush_outbox(now, conn);
    }

    /// The current connection is over (or the attempt failed): count it, then back off, or give
    /// up (R3). `abandon` says whether the driver must still be told to close the socket.
    fn lose_connection(&mut self, now: Instant, cause: Cause, abandon: bool) {
        if let Some(switch) = self.switching.take() {
            // Leaving anyway: the loss ends the drain early.
            if abandon {
                self.disconnect_current("switching vendor");
            }
            if matches!(self.phase, Phase::Ready { .. }) {
                self.emit(Event::Disconnected { cause });
            }
            self.enter(Phase::Idle);
            self.switch_now(now, *switch);
            return;
        }
        if abandon {
            self.disconnect_current(match cause {
                Cause::DeadLink => "heartbeat timeout",
                Cause::ConnectTimeout => "connect timeout",
                Cause::HandshakeTimeout => "handshake timeout",
                _ => "reconnecting",
            });
        }
        let failed = match &self.phase {
            // R2: a connection that dropped before it proved stable counts as a failed attempt.
            Phase::Ready { stable, .. } => {
                // The stability timer may not have fired yet when the loss is reported at or
                // after its deadline: the deadline, not the timer, decides.
                let unstable = !*stable && !self.timers.is_due(Timer::Stable, now);
                self.emit(Event::Disconnected {
                    cause: cause.clone(),
                });
                unstable
            }
            Phase::Connecting { .. } | Phase::Handshaking { .. } => true,
            _ => return,
        };
        self.outbox.requeue();
        self.expire_outbox(now);
        let policy = &self.config.reconnect;
        match self
            .attempts
            .lost(now, failed, policy, &self.config.endpoints)
        {
            Next::GiveUp { attempts } => {
                self.emit(Event::GaveUp { attempts });
                self.finish(CloseReason::GaveUp { attempts });
            }
            Next::Wait(delay) => {
                self.enter(Phase::Backoff);
                self.timers.set_after(Timer::Backoff, now, delay);
                self.emit(Event::Reconnecting {
                    attempt: self.attempts.failures().saturating_add(1),
                    delay,
                    cause,
                });
            }
        }
    }

    /// Tell the driver to close the live transport, if there is one (R5).
    fn disconnect_current(&mut self, reason: &str) {
        if let Some(conn) = self.connection() {
            self.push_out(Output::Disconnect {
                conn,
                code: CLOSE_NORMAL,
                reason: reason.to_owned(),
            });
        }
    }

    fn shut(&mut self, now: Instant, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if let Phase::Ready { conn, .. } = self.phase {
            self.speak(now, conn, |p, cx| p.on_close(cx));
        }
        self.disconnect_current("client closed");
        self.finish(reason);
    }

    /// Terminal: nothing scheduled any more (R4), what was never delivered handed back (Q4),
    /// then `Closed`.
    fn finish(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed(reason.clone());
        self.timers.clear();
        self.switching = None;
        self.outbox.close(&mut self.outputs);
        self.emit(Event::Closed { reason });
    }

    // ----- liveness (H1–H4; the bookkeeping is the link's) -----

    /// H1: at least one heartbeat every interval, answered or not.
    fn send_heartbeat(&mut self, now: Instant) {
        let Phase::Ready { conn, link, .. } = &mut self.phase else {
            return;
        };
        let conn = *conn;
        link.heartbeat_sent(now, &mut self.timers);
        let mode = link.mode;
        self.heartbeat(now, conn, mode);
    }

    /// H4: don't trust stale state; ask the link whether it is alive.
    fn probe(&mut self, now: Instant) {
        let Phase::Ready { conn, link, .. } = &mut self.phase else {
            return;
        };
        let conn = *conn;
        if link.probe(now, &mut self.timers) == Some(Probe::Heartbeat) {
            let mode = link.mode;
            self.heartbeat(now, conn, mode);
        }
    }

    /// A heartbeat of the link's mode: a WebSocket ping, or the protocol's own.
    fn heartbeat(&mut self, now: Instant, conn: ConnId, mode: HeartbeatMode) {
        match mode {
            HeartbeatMode::WebSocketPing { .. } => {
                self.push_out(Output::Transmit {
                    conn,
                    frame: Frame::Ping(Vec::new()),
                });
            }
            _ => self.speak(now, conn, |p, cx| p.on_heartbeat(cx)),
        }
    }

    fn on_pong(&mut self, now: Instant) {
        let rtt = match &mut self.phase {
            Phase::Ready { link, .. } => link.pong(now),
            _ => None,
        };
        self.emit(Event::Heartbeat { rtt });
    }

    // ----- the outbox (Q1–Q4; the bookkeeping is the outbox's) -----

    /// Transmit every held message not yet sent on `conn` (Q2, Q3). Not while leaving this
    /// vendor: new messages wait for the next one. Not while the driver is not reading (Q7):
    /// the user is behind on events, and every message sent adds its fate to them.
    fn flush_outbox(&mut self, now: Instant, conn: ConnId) {
        if self.switching.is_some() || !self.reading {
            return;
        }
        let ack_timeout = self.config.ack_timeout;
        let mut events = std::mem::take(&mut self.scratch);
        let mut cx = Context::new(now, self.heartbeat_mode(), &self.config.limits, &mut events);
        let protocol = &mut *self.protocol;
        (self.outbox).flush(conn, ack_timeout, protocol, &mut cx, &mut self.outputs);
        // Anything else the protocol reported while sending.
        self.apply(now, conn, &mut events);
        self.scratch = events;
    }

    /// Q3: overdue acks: retransmit while retries remain, then hand back.
    fn retry_unacked(&mut self, now: Instant) {
        let Phase::Ready { conn, .. } = self.phase else {
            return;
        };
        let retries = self.config.ack_retries;
        self.outbox.retry_overdue(now, retries, &mut self.outputs);
        self.flush_outbox(now, conn);
        self.maybe_finish_switch(now);
    }

    /// Q1: whether the outbox takes `msg` now (what is past its TTL goes first); its size if so.
    /// One check for `send` and `restore`, which differ only in how they say no.
    #[inline]
    fn admit(&mut self, now: Instant, msg: &OutgoingMessage) -> Result<usize, Refused> {
        let limit = self.config.limits.max_message_bytes;
        if msg.body.len() > limit {
            return Err(Refused::TooLarge {
                size: msg.body.len(),
                limit,
            });
        }
        self.protocol.validate(msg).map_err(Refused::Encode)?;
        self.expire_outbox(now);
        let size = msg.size();
        if !self.outbox.has_room(size) {
            self.arm_outbox_timers();
            return Err(Refused::Full);
        }
        Ok(size)
    }

    /// Q1, Q2: hold an accepted message and send it now if the link is up.
    #[inline]
    fn hold(
        &mut self,
        now: Instant,
        id: SendId,
        key: String,
        msg: OutgoingMessage,
        size: usize,
        ever_sent: bool,
    ) {
        let ttl = msg.ttl.or(self.config.outbox_ttl);
        self.outbox.push(Entry {
            id,
            key,
            size,
            // A TTL too long to represent is no TTL.
            expires_at: ttl.and_then(|t| now.checked_add(t)),
            msg,
            sent_on: None,
            ever_sent,
            resent: false,
            ack_deadline: None,
            ack_retries: 0,
        });
        match self.phase {
            Phase::Ready { conn, .. } => self.flush_outbox(now, conn),
            // Q1: a TTL of zero (or one already over) ends now, not at an overdue deadline.
            _ => self.expire_outbox(now),
        }
        self.arm_outbox_timers();
    }

    fn expire_outbox(&mut self, now: Instant) {
        self.outbox.expire_into(now, &mut self.outputs);
    }

    // ----- the vendor switch -----

    /// Leave the current vendor for `switch`'s, now. Unacked messages are queued again and go
    /// to the new vendor with their keys (at-least-once across the move).
    fn switch_now(&mut self, now: Instant, switch: PendingSwitch) {
        if matches!(self.phase, Phase::Ready { .. }) {
            self.emit(Event::Disconnected {
                cause: Cause::Switched,
            });
        }
        self.disconnect_current("switching vendor");
        self.enter(Phase::Idle);
        self.timers.stop(Timer::Switch);
        self.outbox.requeue();
        self.expire_outbox(now);
        self.protocol = switch.protocol;
        self.attempts.restart(switch.endpoints);
        self.start_connect(now);
    }

    /// A pending switch goes ahead once nothing is in flight on the old vendor (its deadline is
    /// [`Timer::Switch`]).
    fn maybe_finish_switch(&mut self, now: Instant) {
        if self.switching.is_none() {
            return;
        }
        let drained = match self.phase {
            Phase::Ready { conn, .. } => !self.outbox.in_flight_on(conn),
            _ => true,
        };
        if drained {
            if let Some(switch) = self.switching.take() {
                self.switch_now(now, *switch);
            }
        }
    }

    // ----- what goes out -----

    /// Let the protocol answer something that happened on `conn` (through its context), then
    /// act on what it reported.
    fn speak<T>(
        &mut self,
        now: Instant,
        conn: ConnId,
        f: impl FnOnce(&mut dyn Protocol, &mut Context<'_>) -> T,
    ) -> T {
        let mut events = std::mem::take(&mut self.scratch);
        let mode = self.heartbeat_mode();
        let mut cx = Context::new(now, mode, &self.config.limits, &mut events);
        let result = f(&mut *self.protocol, &mut cx);
        self.apply(now, conn, &mut events);
        self.scratch = events;
        result
    }

    /// The heartbeat mode in force: the link's, the one the handshake settled, or the
    /// configured one.
    fn heartbeat_mode(&self) -> HeartbeatMode {
        match &self.phase {
            Phase::Ready { link, .. } => link.mode,
            Phase::Handshaking { heartbeat, .. } => *heartbeat,
            _ => self.config.heartbeat,
        }
    }

    /// S1: ask the server for `channel`.
    fn send_subscribe(&mut self, now: Instant, conn: ConnId, channel: &str) {
        let result = self.speak(now, conn, |p, cx| {
            cx.all_or_nothing(|cx| p.on_subscribe(cx, channel))
        });
        self.subscribe_failed(channel, result);
    }

    fn subscribe_failed(&mut self, channel: &str, result: Result<(), EncodeError>) {
        if let Err(error) = result {
            self.emit(Event::Error(ReportedError::Subscribe {
                channel: channel.to_owned(),
                error,
            }));
        }
    }

    fn emit(&mut self, event: Event) {
        // The hot path (messages, fates, heartbeats) pays one comparison, not a call.
        if log::is_lifecycle(&event) {
            log::lifecycle(&event);
        }
        self.outputs.event(event);
    }

    /// Queue a driver instruction (events go through [`emit`](Self::emit)).
    fn push_out(&mut self, output: Output) {
        self.outputs.push(output);
    }
}

impl std::fmt::Debug for Client {
    // The protocol may hold credentials: name it, never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("protocol", &self.protocol.name())
            .field("state", &self.state())
            .field("connection", &self.connection())
            .field("failures", &self.attempts.failures())
            .field("outbox", &self.outbox.len())
            .field("subscriptions", &self.desired.len())
            .finish_non_exhaustive()
    }
}
