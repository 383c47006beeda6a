//! The whole state machine under arbitrary sequences of inputs: transport events (current and
//! stale generations), hostile frames through the real livechat decoder, time advances and
//! jumps, and user commands. After every step: no panic, never two live connections, nothing
//! scheduled after `Closed`, no `Connect` after a close or kick, the outbox within its bounds,
//! and no deadline left overdue (no busy loop).

#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use im_proto::{
    Client, Config, ConnId, Event, Frame, HeartbeatMode, Limits, LiveChat, OutgoingMessage,
    Output, ReconnectPolicy, TransportEvent,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Jump(u16),
    Opened { stale: bool },
    Text { stale: bool, script: u8, junk: Vec<u8> },
    Binary { stale: bool, bytes: Vec<u8> },
    Closed { stale: bool },
    Failed { stale: bool },
    Send { len: u16, ttl_ms: Option<u16> },
    Subscribe(u8),
    Unsubscribe(u8),
    Close,
    NetworkOnline,
    Reading(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    jitter: u8,
    max_attempts: Option<u8>,
    ops: Vec<Op>,
}

/// Frames a livechat server could send, by number; anything else is the raw junk.
fn scripted(script: u8, junk: &[u8]) -> String {
    match script % 10 {
        0 => r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#.into(),
        1 => r#"{"cmd":"auth_ok"}"#.into(),
        2 => r#"{"cmd":"wd_heartbeat"}"#.into(),
        3 => r#"{"cmd":"conn_close"}"#.into(),
        4 => format!(r#"{{"cmd":"ack","msg_id":"{}"}}"#, String::from_utf8_lossy(junk)),
        5 => r#"{"cmd":"reconnect","result":{"after_ms":1500}}"#.into(),
        6 => r#"{"cmd":"chat","result":{"room":"r","message":{"t":1}}}"#.into(),
        7 => r#"{"cmd":"auth_fail"}"#.into(),
        _ => String::from_utf8_lossy(junk).into_owned(),
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
        while let Some(out) = self.client.poll_output() {
            match out {
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
                Output::Event(Event::Closed { .. }) => {
                    assert!(!self.ended, "two Closed events");
                    self.ended = true;
                }
                Output::Event(_) => assert!(!self.ended, "event after Closed"),
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

    fn target(&self, stale: bool) -> ConnId {
        match (stale, self.last_conn) {
            (false, Some(c)) => c,
            (_, Some(c)) => ConnId(c.0.wrapping_sub(1)),
            (_, None) => ConnId(7),
        }
    }

    fn transport(&mut self, stale: bool, event: TransportEvent) {
        let conn = self.target(stale);
        let lost = matches!(event, TransportEvent::Closed { .. } | TransportEvent::Failed(_));
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
            assert!(steps < 100_000, "busy loop: deadlines never move past {deadline:?}");
            if let Some(next) = self.client.poll_timeout() {
                assert!(next > self.now, "a deadline left overdue after handle_timeout");
            }
        }
        self.now = self.now.max(to);
    }
}

fuzz_target!(|input: Input| {
    let limits = Limits {
        outbox_messages: 8,
        outbox_bytes: 2_048,
        max_subscriptions: 4,
        max_frame_bytes: 4_096,
        ..Limits::default()
    };
    let config = Config::builder()
        .endpoint("ws://a/ws")
        .endpoint("ws://b/ws")
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
        })
        .reconnect(ReconnectPolicy {
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: f64::from(input.jitter) / 255.0,
            max_attempts: input.max_attempts.map(|n| u32::from(n % 8) + 1),
            ..ReconnectPolicy::default()
        })
        .limits(limits.clone())
        .seed(input.seed)
        .build()
        .expect("valid config");
    let now = Instant::now();
    let mut w = World {
        client: Client::new(config, Box::new(LiveChat::new(1, 2, "key")), now).unwrap(),
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
            Op::Opened { stale } => w.transport(stale, TransportEvent::Opened),
            Op::Text { stale, script, junk } => {
                w.transport(stale, TransportEvent::Frame(Frame::Text(scripted(script, &junk).into())))
            }
            Op::Binary { stale, bytes } => {
                w.transport(stale, TransportEvent::Frame(Frame::Binary(bytes)))
            }
            Op::Closed { stale } => w.transport(
                stale,
                TransportEvent::Closed { code: Some(1006), reason: String::new() },
            ),
            Op::Failed { stale } => w.transport(stale, TransportEvent::Failed("boom".into())),
            Op::Send { len, ttl_ms } => {
                let mut msg = OutgoingMessage::text("room", "x".repeat(usize::from(len % 1024)));
                if let Some(ms) = ttl_ms {
                    msg = msg.with_ttl(Duration::from_millis(u64::from(ms) + 1));
                }
                let _ = w.client.send(w.now, msg);
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
            Op::NetworkOnline => {
                w.client.network_online(w.now);
                w.drain();
            }
            Op::Reading(on) => {
                w.client.set_reading(w.now, on);
                w.drain();
            }
        }
    }
});
