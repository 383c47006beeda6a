//! Deterministic simulation: a virtual clock and a scripted peer that drive a [`Client`] with no
//! sockets and no real time, so any protocol can be tested reproducibly.
//!
//! ```
//! # #[cfg(feature = "livechat")] {
//! use std::time::{Duration, Instant};
//! use im_proto::sim::{Harness, Reply, ScriptedPeer};
//! use im_proto::{Config, Event, Frame, LiveChat};
//!
//! // A fixed seed makes the run reproducible; a real client gives each process entropy.
//! let config = Config::builder().endpoint("ws://sim/ws").seed(1).build().unwrap();
//! // A server of exactly the seed's livechat: the client is ready once it answered auth1.
//! let peer = ScriptedPeer::new()
//!     .greeting(|_| vec![Frame::Text(r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#.into())])
//!     .respond(|_, frame| match frame {
//!         Frame::Text(t) if t.contains("wd_heartbeat") => vec![Reply::text(t.as_str())],
//!         _ => vec![],
//!     });
//! let protocol = Box::new(LiveChat::new(1, 2, "key"));
//! let mut sim = Harness::new(config, protocol, peer, Instant::now()).unwrap();
//! sim.client.connect(sim.clock.now());
//! sim.run_for(Duration::from_secs(1));
//! assert!(sim.events().any(|e| matches!(e, Event::Connected { .. })));
//! # }
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use web_time::Instant;

use crate::client::Client;
use crate::config::Config;
use crate::error::TransportError;
use crate::output::{Event, Output};
use crate::protocol::Protocol;
use crate::transport::{ConnId, Endpoint, Frame, TransportEvent};

/// Virtual time: starts where you say and moves only when told.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    now: Instant,
}

impl Clock {
    pub fn new(start: Instant) -> Self {
        Clock { now: start }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn advance(&mut self, d: Duration) -> Instant {
        self.now += d;
        self.now
    }

    /// Move to `t`; time never goes backwards.
    pub fn set(&mut self, t: Instant) {
        self.now = self.now.max(t);
    }
}

/// What the scripted server does in answer to a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Frame(Frame),
    /// Close the connection from the server side.
    Close {
        code: Option<u16>,
        reason: String,
    },
}

impl Reply {
    pub fn text(t: impl Into<crate::Text>) -> Self {
        Reply::Frame(Frame::Text(t.into()))
    }
}

/// How the scripted server answers a connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    Yes,
    /// Refused at once (server down).
    Refuse(String),
    /// Never answered (a black hole): only the connect timeout ends the attempt.
    Hang,
}

type Greeting = Box<dyn FnMut(Instant) -> Vec<Frame>>;
type Responder = Box<dyn FnMut(Instant, &Frame) -> Vec<Reply>>;

/// A server made of closures, with switches for the faults tests need.
pub struct ScriptedPeer {
    /// How the next connects are answered.
    pub accept: Accept,
    /// While true the server receives but never answers (a half-open link).
    pub silent: bool,
    /// One-way delay of everything the server sends (and of connect results).
    pub latency: Duration,
    greeting: Greeting,
    responder: Responder,
    /// Every frame the client transmitted, with the connection and time.
    pub received: Vec<(Instant, ConnId, Frame)>,
    /// Every connect attempt, with its endpoint.
    pub connects: Vec<(Instant, ConnId, Endpoint)>,
    /// Connections the client told us to close.
    pub disconnects: Vec<(Instant, ConnId, u16)>,
}

impl Default for ScriptedPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedPeer {
    /// Accepts every connect, says nothing, answers nothing.
    pub fn new() -> Self {
        ScriptedPeer {
            accept: Accept::Yes,
            silent: false,
            latency: Duration::ZERO,
            greeting: Box::new(|_| Vec::new()),
            responder: Box::new(|_, _| Vec::new()),
            received: Vec::new(),
            connects: Vec::new(),
            disconnects: Vec::new(),
        }
    }

    /// Frames the server sends as soon as a connection opens.
    pub fn greeting(mut self, f: impl FnMut(Instant) -> Vec<Frame> + 'static) -> Self {
        self.greeting = Box::new(f);
        self
    }

    /// How the server answers each frame the client sends.
    pub fn respond(mut self, f: impl FnMut(Instant, &Frame) -> Vec<Reply> + 'static) -> Self {
        self.responder = Box::new(f);
        self
    }
}

impl std::fmt::Debug for ScriptedPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPeer")
            .field("accept", &self.accept)
            .field("silent", &self.silent)
            .field("received", &self.received.len())
            .field("connects", &self.connects.len())
            .finish_non_exhaustive()
    }
}

/// One entry of the [`Harness`] journal: everything that crossed the client's boundary, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// The client emitted this.
    Output(Output),
    /// The harness delivered this transport event to the client.
    Input(ConnId, TransportEvent),
}

/// One client, one scripted server, one virtual clock. Server-to-client traffic takes
/// `peer.latency`; client-to-server traffic is instantaneous.
#[derive(Debug)]
pub struct Harness {
    pub client: Client,
    pub clock: Clock,
    pub peer: ScriptedPeer,
    /// Every output and transport input, with its time, in order.
    pub journal: Vec<(Instant, Record)>,
    /// The connection the server side considers open.
    server_conn: Option<ConnId>,
    /// Server-to-client traffic in flight, by arrival time.
    inbound: VecDeque<(Instant, ConnId, TransportEvent)>,
}

impl Harness {
    /// A client made with `config` (which must carry a seed) around `peer`.
    pub fn new(
        config: Config,
        protocol: Box<dyn Protocol>,
        peer: ScriptedPeer,
        start: Instant,
    ) -> Result<Self, crate::ConfigError> {
        Ok(Self::with_client(
            Client::new(config, protocol, start)?,
            peer,
            start,
        ))
    }

    /// Around a client made by the caller (one sharing its configuration, say).
    pub fn with_client(client: Client, peer: ScriptedPeer, start: Instant) -> Self {
        Harness {
            client,
            clock: Clock::new(start),
            peer,
            journal: Vec::new(),
            server_conn: None,
            inbound: VecDeque::new(),
        }
    }

    /// The events so far.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.journal.iter().filter_map(|(_, r)| match r {
            Record::Output(Output::Event(e)) => Some(e),
            _ => None,
        })
    }

    /// The events so far, with their times.
    pub fn timed_events(&self) -> impl Iterator<Item = (Instant, &Event)> {
        self.journal.iter().filter_map(|(t, r)| match r {
            Record::Output(Output::Event(e)) => Some((*t, e)),
            _ => None,
        })
    }

    /// The connection the server currently holds open.
    pub fn server_connection(&self) -> Option<ConnId> {
        self.server_conn
    }

    /// Deliver outputs, and inputs that have arrived, until both are exhausted.
    pub fn settle(&mut self) {
        loop {
            // The drain's closing `Timeout` is not journaled: `step_until` asks for it anew.
            while let Some(output) = self.next_output() {
                self.on_output(output);
            }
            match self.inbound.front() {
                Some((due, _, _)) if *due <= self.clock.now() => {}
                _ => break,
            }
            let (_, conn, event) = self.inbound.pop_front().expect("checked above");
            let now = self.clock.now();
            self.journal.push((now, Record::Input(conn, event.clone())));
            self.client.handle_transport(now, conn, event);
        }
    }

    /// Run every timer and delivery up to and including `t`, each at its exact time.
    pub fn run_until(&mut self, t: Instant) {
        self.settle();
        while self.step_until(t) {}
        self.clock.set(t);
        self.settle();
    }

    /// Run the next timer or delivery if it is due by `t`, at its exact time; `false` when
    /// nothing is (the clock stays). For checking invariants after every internal step.
    pub fn step_until(&mut self, t: Instant) -> bool {
        let timer = self.client.poll_timeout();
        let arrival = self.inbound.front().map(|(due, _, _)| *due);
        let next = match (timer, arrival) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(x) => x,
                None => return false,
            },
        };
        if next > t {
            return false;
        }
        self.clock.set(next);
        if timer.is_some_and(|d| d <= self.clock.now()) {
            self.client.handle_timeout(self.clock.now());
        }
        self.settle();
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let t = self.clock.now() + d;
        self.run_until(t);
    }

    /// Jump the clock without running the timers in between (a frozen process), then deliver
    /// one late timeout.
    pub fn jump(&mut self, d: Duration) {
        self.clock.advance(d);
        self.client.handle_timeout(self.clock.now());
        self.settle();
    }

    /// The server sends `frame` on its open connection. Returns false if none is open.
    pub fn server_send(&mut self, frame: Frame) -> bool {
        match self.server_conn {
            Some(conn) => {
                self.deliver(conn, TransportEvent::Frame(frame));
                self.settle();
                true
            }
            None => false,
        }
    }

    /// The server closes its connection (or crashes, with `code: None`).
    pub fn server_close(&mut self, code: Option<u16>) {
        if let Some(conn) = self.server_conn.take() {
            let reason = String::new();
            self.deliver(conn, TransportEvent::Closed { code, reason });
            self.settle();
        }
    }

    fn deliver(&mut self, conn: ConnId, event: TransportEvent) {
        let due = self.clock.now() + self.peer.latency;
        self.inbound.push_back((due, conn, event));
    }

    /// The client's next output before the drain's closing [`Output::Timeout`].
    fn next_output(&mut self) -> Option<Output> {
        match self.client.poll_output() {
            Output::Timeout(_) => None,
            output => Some(output),
        }
    }

    fn on_output(&mut self, output: Output) {
        let now = self.clock.now();
        self.journal.push((now, Record::Output(output.clone())));
        match output {
            Output::Connect { conn, endpoint, .. } => {
                self.peer.connects.push((now, conn, endpoint));
                match self.peer.accept.clone() {
                    Accept::Yes => {
                        self.server_conn = Some(conn);
                        self.deliver(conn, TransportEvent::Opened);
                        for frame in (self.peer.greeting)(now) {
                            self.deliver(conn, TransportEvent::Frame(frame));
                        }
                    }
                    Accept::Refuse(why) => {
                        self.deliver(conn, TransportEvent::Failed(TransportError::Other(why)))
                    }
                    Accept::Hang => {}
                }
            }
            Output::Transmit { conn, frame } => {
                if self.server_conn != Some(conn) {
                    return;
                }
                let replies = match &frame {
                    _ if self.peer.silent => Vec::new(),
                    // WebSocket libraries answer pings by themselves.
                    Frame::Ping(payload) => vec![Reply::Frame(Frame::Pong(payload.clone()))],
                    _ => (self.peer.responder)(now, &frame),
                };
                self.peer.received.push((now, conn, frame));
                for reply in replies {
                    match reply {
                        Reply::Frame(f) => self.deliver(conn, TransportEvent::Frame(f)),
                        Reply::Close { code, reason } => {
                            self.server_conn = None;
                            self.deliver(conn, TransportEvent::Closed { code, reason });
                        }
                    }
                }
            }
            Output::Disconnect { conn, code, .. } => {
                self.peer.disconnects.push((now, conn, code));
                if self.server_conn == Some(conn) {
                    self.server_conn = None;
                }
            }
            Output::Event(_) | Output::Timeout(_) => {}
        }
    }
}
