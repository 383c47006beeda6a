//! The whole state machine under arbitrary sequences of inputs, for every vendor protocol
//! (livechat in both dialects, MQTT, Socket.IO, NATS) and arbitrary configurations (durations
//! from zero to `Duration::MAX`, huge multipliers, an outbox of one): transport events (current
//! and stale generations), scripted and hostile frames through the real decoders, time that
//! advances, jumps, stands still and goes back, and every user command (sends with shared keys,
//! deliveries and TTLs of every size, vendor switches, `set_reading`, `close_with`,
//! `take_events`). After every
//! step: no panic, never two live connections, nothing scheduled after `Closed`, no `Connect`
//! after a close or kick, the outbox within its bounds, every drain ending in the deadline
//! `poll_timeout` reports, and no deadline left overdue (no busy loop).

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use im_proto::protocols::mqtt::Packet;
use im_proto::{
    Client, CloseReason, Config, ConnId, Delivery, Event, Frame, HeartbeatMode, Limits, LiveChat,
    Mqtt, Nats, OutgoingMessage, Output, Protocol, ReconnectPolicy, SocketIo, TlsError,
    TransportError, TransportEvent,
};

/// A transport failure of each kind the drivers report.
fn failure(why: u8) -> TransportError {
    match why % 6 {
        0 => TransportError::ConnectionRefused,
        1 => TransportError::TimedOut,
        2 => TransportError::Dns {
            host: "a".into(),
            detail: "no address".into(),
        },
        3 => TransportError::Tls(TlsError::Certificate(im_proto::CertificateError::Expired)),
        4 => TransportError::WriteStalled(std::time::Duration::from_secs(10)),
        _ => TransportError::Io {
            kind: std::io::ErrorKind::ConnectionReset,
            detail: "reset".into(),
        },
    }
}
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Jump(u16),
    /// Time goes back this many milliseconds (a clock that is not monotonic, a test harness).
    Back(u16),
    /// An input at the same instant again.
    Still,
    Opened {
        stale: bool,
    },
    Text {
        stale: bool,
        script: u8,
        junk: Vec<u8>,
    },
    Binary {
        stale: bool,
        script: u8,
        bytes: Vec<u8>,
    },
    Closed {
        stale: bool,
    },
    Failed {
        stale: bool,
        why: u8,
    },
    Send {
        len: u16,
        ttl: Option<Span>,
        key: Option<u8>,
        delivery: Option<bool>,
        retain: bool,
    },
    Subscribe(u8),
    Unsubscribe(u8),
    Close,
    CloseWith,
    TakeEvents,
    NetworkOnline,
    Reading(bool),
    Switch(u8),
    /// Q5: a message from a durable store, `gap` above the next id (or below it: misuse).
    Restore {
        gap: u64,
        below: bool,
        len: u16,
    },
}

/// A duration from the edges inwards: zero, one millisecond, ordinary, enormous, `MAX`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Span {
    Zero,
    Millis(u16),
    Secs(u32),
    Huge,
    Max,
}

impl Span {
    fn get(self) -> Duration {
        match self {
            Span::Zero => Duration::ZERO,
            Span::Millis(ms) => Duration::from_millis(u64::from(ms)),
            Span::Secs(s) => Duration::from_secs(u64::from(s)),
            Span::Huge => Duration::from_secs(u64::MAX / 2),
            Span::Max => Duration::MAX,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Settings {
    heartbeat: u8,
    interval: Span,
    timeout: Span,
    initial: Span,
    max_delay: Span,
    multiplier: u8,
    stable_after: Span,
    connect_timeout: Span,
    handshake_timeout: Span,
    clock_jump: Span,
    outbox_ttl: Option<Span>,
    ack_timeout: Span,
    ack_retries: u8,
    max_server_delay: Span,
    outbox_messages: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    protocol: u8,
    jitter: u8,
    max_attempts: Option<u8>,
    settings: Settings,
    ops: Vec<Op>,
}

fn protocol(n: u8) -> Box<dyn Protocol> {
    match n % 5 {
        0 => Box::new(LiveChat::new(1, 2, "key")),
        1 => Box::new(Mqtt::new("fuzz")),
        2 => Box::new(SocketIo::new().room_events("join", "leave")),
        3 => Box::new(Mqtt::new("fuzz").persistent_session()),
        _ => Box::new(Nats::new("fuzz").with_token("t")),
    }
}

fn mqtt(packet: Packet) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(&mut out);
    out
}

/// Text frames a server of any vendor could send, by number; anything else is the raw junk.
fn scripted_text(script: u8, junk: &[u8]) -> String {
    let junk = String::from_utf8_lossy(junk);
    match script % 24 {
        0 => r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#.into(),
        1 => r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s","dialect":"im"}}"#.into(),
        2 => r#"{"cmd":"auth_ok"}"#.into(),
        3 => r#"{"cmd":"wd_heartbeat"}"#.into(),
        4 => r#"{"cmd":"conn_close"}"#.into(),
        5 => format!(r#"{{"cmd":"ack","msg_id":"{junk}"}}"#),
        6 => r#"{"cmd":"reconnect","result":{"after_ms":18446744073709551615}}"#.into(),
        7 => r#"{"cmd":"chat","result":{"room":"r","message":{"t":1}}}"#.into(),
        8 => r#"{"cmd":"auth_fail"}"#.into(),
        9 => r#"0{"sid":"x","pingInterval":25000,"pingTimeout":20000}"#.into(),
        10 => r#"0{"sid":"x","pingInterval":18446744073709551615,"pingTimeout":1}"#.into(),
        11 => "40".into(),
        12 => "2".into(),
        13 => r#"42["c",{"t":1}]"#.into(),
        14 => format!("43{}[]", junk.len()),
        15 => "41".into(),
        16 => r#"44{"message":"no"}"#.into(),
        17 => "1".into(),
        18 => r#"42/other,["c",1]"#.into(),
        _ => junk.into_owned(),
    }
}

/// Binary frames (MQTT packets, NATS operations), by number; anything else the raw bytes.
fn scripted_binary(script: u8, bytes: &[u8]) -> Vec<u8> {
    let id = bytes.first().map_or(1, |b| u16::from(*b).max(1));
    match script % 16 {
        0 => mqtt(Packet::ConnAck {
            session_present: false,
            code: 0,
        }),
        1 => mqtt(Packet::ConnAck {
            session_present: false,
            code: 3,
        }),
        2 => mqtt(Packet::ConnAck {
            session_present: false,
            code: 5,
        }),
        3 => mqtt(Packet::PubAck { packet_id: id }),
        4 => mqtt(Packet::SubAck {
            packet_id: id,
            codes: vec![1],
        }),
        5 => mqtt(Packet::PingResp),
        6 => mqtt(Packet::Publish {
            dup: false,
            qos: 1,
            retain: false,
            topic: "t".into(),
            packet_id: Some(id),
            payload: bytes.to_vec().into(),
        }),
        7 => b"INFO {\"connect_urls\":[\"h:1\"]}\r\n".to_vec(),
        8 => b"PONG\r\n".to_vec(),
        9 => b"PING\r\n".to_vec(),
        10 => b"MSG\ts\t1\t2\r\nhi\r\n".to_vec(),
        11 => b"-ERR 'Authorization Violation'\r\n".to_vec(),
        12 => b"-ERR 'Stale Connection'\r\n".to_vec(),
        _ => bytes.to_vec(),
    }
}

struct World {
    client: Client,
    now: Instant,
    live: Option<ConnId>,
    last_conn: Option<ConnId>,
    ended: bool,
    limits: Limits,
}

impl World {
    fn drain(&mut self) {
        loop {
            match self.client.poll_output() {
                Output::Timeout(deadline) => {
                    assert_eq!(deadline, self.client.poll_timeout(), "two deadlines");
                    break;
                }
                Output::Connect { conn, .. } => {
                    assert!(self.live.is_none(), "two live connections");
                    assert!(!self.ended, "Connect after Closed");
                    self.live = Some(conn);
                    self.last_conn = Some(conn);
                }
                Output::Disconnect { conn, .. } => {
                    assert_eq!(self.live, Some(conn), "disconnect of a non-live connection");
                    self.live = None;
                }
                Output::Transmit { conn, .. } => {
                    assert_eq!(self.live, Some(conn), "transmit on a dead connection");
                }
                Output::Event(event) => self.event(event),
            }
        }
        assert!(self.client.outbox_len() <= self.limits.outbox_messages);
        assert!(self.client.outbox_bytes() <= self.limits.outbox_bytes);
        if self.client.is_closed() {
            assert!(self.ended, "closed without a Closed event");
            assert_eq!(self.client.poll_timeout(), None, "a timer survived Closed");
            assert_eq!(self.client.connection(), None);
        }
    }

    fn event(&mut self, event: Event) {
        if let Event::Closed { .. } = event {
            assert!(!self.ended, "two Closed events");
            self.ended = true;
        } else {
            assert!(!self.ended, "event after Closed");
        }
    }

    fn target(&self, stale: bool) -> ConnId {
        match (stale, self.last_conn) {
            (false, Some(c)) => c,
            (_, Some(c)) => ConnId::from_raw(c.get().wrapping_sub(1)),
            (_, None) => ConnId::from_raw(7),
        }
    }

    fn transport(&mut self, stale: bool, event: TransportEvent) {
        let conn = self.target(stale);
        let lost = matches!(
            event,
            TransportEvent::Closed { .. } | TransportEvent::Failed(_)
        );
        self.client.handle_transport(self.now, conn, event);
        if lost && self.live == Some(conn) {
            self.live = None;
        }
        self.drain();
    }

    /// Run every deadline up to `to`, each at its time.
    fn advance(&mut self, to: Instant) {
        let mut steps = 0;
        while let Some(deadline) = self.client.poll_timeout() {
            if deadline > to {
                break;
            }
            self.now = self.now.max(deadline);
            self.client.handle_timeout(self.now);
            self.drain();
            steps += 1;
            assert!(
                steps < 100_000,
                "busy loop: deadlines never move past {deadline:?}"
            );
            if let Some(next) = self.client.poll_timeout() {
                assert!(
                    next > self.now,
                    "a deadline left overdue after handle_timeout"
                );
            }
        }
        self.now = self.now.max(to);
    }
}

fn config(input: &Input) -> Option<Config> {
    let s = &input.settings;
    let limits = Limits::default()
        .outbox_messages(usize::from(s.outbox_messages % 16) + 1)
        .outbox_bytes(2_048)
        .max_subscriptions(4)
        .max_frame_bytes(4_096);
    let (interval, timeout) = (s.interval.get(), s.timeout.get());
    let heartbeat = match s.heartbeat % 4 {
        0 => HeartbeatMode::ClientDriven { interval, timeout },
        1 => HeartbeatMode::ServerDriven { interval, timeout },
        2 => HeartbeatMode::WebSocketPing { interval, timeout },
        _ => HeartbeatMode::Off,
    };
    let multiplier = match s.multiplier % 4 {
        0 => 1.0,
        1 => 1.5,
        2 => 1e300,
        _ => f64::from(s.multiplier),
    };
    // Values the builder refuses (zero where zero makes no sense) end the case: validation is
    // the edge under test there, and `Client::new` must refuse them too.
    Config::builder()
        .endpoint("ws://a/ws")
        .endpoint("wss://b/ws")
        .heartbeat(heartbeat)
        .reconnect(
            ReconnectPolicy::default()
                .initial(s.initial.get())
                .max_delay(s.max_delay.get())
                .multiplier(multiplier)
                .jitter(f64::from(input.jitter) / 255.0)
                .stable_after(s.stable_after.get())
                .max_attempts(input.max_attempts.map(|n| u32::from(n % 8) + 1)),
        )
        .connect_timeout(s.connect_timeout.get())
        .handshake_timeout(s.handshake_timeout.get())
        .clock_jump_threshold(s.clock_jump.get())
        .outbox_ttl(s.outbox_ttl.map(Span::get))
        .ack_timeout(s.ack_timeout.get())
        .ack_retries(u32::from(s.ack_retries % 4))
        .max_server_delay(s.max_server_delay.get())
        .limits(limits)
        .seed(input.seed)
        .build()
        .ok()
}

fuzz_target!(|input: Input| {
    let Some(config) = config(&input) else {
        return;
    };
    let limits = config.limits.clone();
    let now = Instant::now();
    let client = Client::new(config, protocol(input.protocol), now).expect("a built config");
    let mut w = World {
        client,
        now,
        live: None,
        last_conn: None,
        ended: false,
        limits,
    };
    w.client.connect(now);
    w.drain();
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Advance(ms) => {
                let to = w.now + Duration::from_millis(u64::from(ms));
                w.advance(to);
            }
            Op::Jump(s) => {
                w.now += Duration::from_secs(u64::from(s));
                w.client.handle_timeout(w.now);
                w.drain();
            }
            Op::Back(ms) => {
                w.now = w
                    .now
                    .checked_sub(Duration::from_millis(u64::from(ms)))
                    .unwrap_or(w.now);
                w.client.handle_timeout(w.now);
                w.drain();
            }
            Op::Still => {
                w.client.handle_timeout(w.now);
                w.drain();
            }
            Op::Opened { stale } => w.transport(stale, TransportEvent::Opened),
            Op::Text {
                stale,
                script,
                junk,
            } => w.transport(
                stale,
                TransportEvent::Frame(Frame::Text(scripted_text(script, &junk).into())),
            ),
            Op::Binary {
                stale,
                script,
                bytes,
            } => w.transport(
                stale,
                TransportEvent::Frame(Frame::Binary(scripted_binary(script, &bytes).into())),
            ),
            Op::Closed { stale } => w.transport(
                stale,
                TransportEvent::Closed {
                    code: Some(1006),
                    reason: String::new(),
                },
            ),
            Op::Failed { stale, why } => w.transport(stale, TransportEvent::Failed(failure(why))),
            Op::Send {
                len,
                ttl,
                key,
                delivery,
                retain,
            } => {
                let mut msg = OutgoingMessage::text("room", "x".repeat(usize::from(len % 1024)));
                if let Some(ttl) = ttl {
                    msg = msg.with_ttl(ttl.get());
                }
                if let Some(k) = key {
                    // Few keys, so that sends share them.
                    msg = msg.with_key(format!("k{}", k % 3));
                }
                if let Some(acked) = delivery {
                    msg = msg.with_delivery(if acked {
                        Delivery::AtLeastOnce
                    } else {
                        Delivery::AtMostOnce
                    });
                }
                if retain {
                    msg = msg.retained();
                }
                let _ = w.client.send(w.now, msg);
                w.drain();
            }
            Op::Restore { gap, below, len } => {
                let next = w.client.next_send_id().0;
                let id = if below {
                    next.saturating_sub(gap)
                } else {
                    next.saturating_add(gap)
                };
                let msg = OutgoingMessage::text("room", "r".repeat(usize::from(len % 1024)));
                let _ = w
                    .client
                    .restore(w.now, im_proto::SendId(id), format!("stored-{id}"), msg);
                w.drain();
            }
            Op::Subscribe(c) => {
                let _ = w.client.subscribe(w.now, &format!("ch{}", c % 6));
                w.drain();
            }
            Op::Unsubscribe(c) => {
                w.client.unsubscribe(w.now, &format!("ch{}", c % 6));
                w.drain();
            }
            Op::Close => {
                w.client.close(w.now);
                w.drain();
            }
            Op::CloseWith => {
                w.client
                    .close_with(w.now, CloseReason::EventsOverflow { pending: 1 });
                w.drain();
            }
            Op::TakeEvents => {
                let mut taken = std::collections::VecDeque::new();
                w.client.take_events(&mut taken);
                for event in taken {
                    w.event(event);
                }
                w.drain();
            }
            Op::NetworkOnline => {
                w.client.network_online(w.now);
                w.drain();
            }
            Op::Reading(on) => {
                w.client.set_reading(w.now, on);
                w.drain();
            }
            Op::Switch(p) => {
                let endpoints = vec!["ws://c/ws".into()];
                let _ = w.client.switch_protocol(w.now, protocol(p), endpoints);
                w.drain();
            }
        }
    }
});
