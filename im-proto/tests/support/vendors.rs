//! Scripted servers that speak each real vendor's protocol, for running the rule properties
//! (`tests/rules.rs`) against livechat (both dialects), MQTT, Socket.IO and NATS (core and
//! JetStream) as well as the toy protocol: the same operations, the same checks, each vendor's own frames.

use std::time::Duration;

use im_proto::protocols::mqtt::Packet;
use im_proto::sim::Reply;
use im_proto::{Frame, HeartbeatMode, JetStream, LiveChat, Mqtt, Nats, Protocol, SocketIo};

/// Which protocol a property runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// `support::toy`: every `ProtocolEvent` on demand.
    Toy,
    LiveChatIm,
    LiveChatSeed,
    Mqtt,
    SocketIo,
    Nats,
    /// NATS with JetStream: acked publishes, a durable consumer per subscription.
    JetStream,
}

/// What the server does with the client's frames, as a property sets it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    pub mute_pongs: bool,
    pub drop_acks: bool,
}

/// Socket.IO's ping interval and timeout, from the open packet the scripted server sends.
pub const SIO_PING: (Duration, Duration) = (Duration::from_millis(800), Duration::from_millis(600));

fn text(s: impl Into<String>) -> Frame {
    Frame::Text(s.into().into())
}

fn mqtt(packet: Packet) -> Frame {
    let mut out = Vec::new();
    packet.encode(&mut out);
    Frame::Binary(out.into())
}

impl Vendor {
    pub const REAL: [Vendor; 6] = [
        Vendor::LiveChatIm,
        Vendor::LiveChatSeed,
        Vendor::Mqtt,
        Vendor::SocketIo,
        Vendor::Nats,
        Vendor::JetStream,
    ];

    pub fn protocol(self) -> Box<dyn Protocol> {
        match self {
            Vendor::Toy => unreachable!("the toy is built by the caller"),
            Vendor::LiveChatIm | Vendor::LiveChatSeed => Box::new(LiveChat::new(1, 2, "key")),
            Vendor::Mqtt => Box::new(Mqtt::new("props")),
            Vendor::SocketIo => Box::new(SocketIo::new().ack_emits(true)),
            Vendor::Nats => Box::new(Nats::new("props")),
            Vendor::JetStream => Box::new(Nats::new("props").jetstream(JetStream::new("S"))),
        }
    }

    /// The heartbeat mode the server imposes, if it does (Socket.IO's open packet).
    pub fn imposed_mode(self) -> Option<HeartbeatMode> {
        (self == Vendor::SocketIo).then_some(HeartbeatMode::ServerDriven {
            interval: SIO_PING.0,
            timeout: SIO_PING.1,
        })
    }

    /// What the server says when a connection opens.
    pub fn greeting(self) -> Vec<Frame> {
        match self {
            Vendor::Toy => vec![text("WELCOME")],
            Vendor::LiveChatIm => vec![text(
                r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s","dialect":"im"}}"#,
            )],
            Vendor::LiveChatSeed => {
                vec![text(r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#)]
            }
            Vendor::Mqtt => vec![],
            Vendor::SocketIo => vec![text(format!(
                r#"0{{"sid":"s","pingInterval":{},"pingTimeout":{}}}"#,
                SIO_PING.0.as_millis(),
                SIO_PING.1.as_millis()
            ))],
            Vendor::Nats | Vendor::JetStream => vec![Frame::Binary(
                b"INFO {\"server_id\":\"props\",\"client_id\":7,\"max_payload\":1048576}\r\n"
                    .to_vec()
                    .into(),
            )],
        }
    }

    /// The server's answer to one client frame.
    pub fn respond(self, frame: &Frame, b: Behaviour) -> Vec<Reply> {
        match (self, frame) {
            (Vendor::LiveChatIm | Vendor::LiveChatSeed, Frame::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
                let im = self == Vendor::LiveChatIm;
                match v["cmd"].as_str() {
                    Some("auth2") if im => vec![Reply::text(r#"{"cmd":"auth_ok"}"#)],
                    Some("wd_heartbeat") if !b.mute_pongs => {
                        vec![Reply::text(r#"{"cmd":"wd_heartbeat"}"#)]
                    }
                    Some("join") if im => vec![Reply::text(
                        serde_json::json!({"cmd": "joined", "room": v["room"]}).to_string(),
                    )],
                    Some("chat") if im && !b.drop_acks => vec![Reply::text(
                        serde_json::json!({"cmd": "ack", "msg_id": v["msg_id"]}).to_string(),
                    )],
                    _ => vec![],
                }
            }
            (Vendor::Mqtt, Frame::Binary(bytes)) => {
                let Ok(Some((packet, _))) = Packet::decode(bytes, 1 << 20) else {
                    return vec![];
                };
                let answer = match packet {
                    Packet::Connect { .. } => Packet::ConnAck {
                        session_present: false,
                        code: 0,
                    },
                    Packet::PingReq if !b.mute_pongs => Packet::PingResp,
                    Packet::Publish {
                        packet_id: Some(packet_id),
                        ..
                    } if !b.drop_acks => Packet::PubAck { packet_id },
                    Packet::Subscribe { packet_id, .. } => Packet::SubAck {
                        packet_id,
                        codes: vec![1],
                    },
                    _ => return vec![],
                };
                vec![Reply::Frame(mqtt(answer))]
            }
            (Vendor::SocketIo, Frame::Text(t)) => {
                if t.as_str() == "40" {
                    return vec![Reply::text(r#"40{"sid":"x"}"#)];
                }
                // `42<id>[…]`: an acked emit.
                let Some(rest) = t.strip_prefix("42") else {
                    return vec![];
                };
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if digits.is_empty() || b.drop_acks {
                    return vec![];
                }
                vec![Reply::text(format!("43{digits}[]"))]
            }
            (Vendor::Nats | Vendor::JetStream, Frame::Binary(bytes)) => {
                let ops = String::from_utf8_lossy(bytes);
                let mut replies = Vec::new();
                if ops.contains("PING\r\n") && !b.mute_pongs {
                    replies.push(Reply::Frame(Frame::Binary(b"PONG\r\n".to_vec().into())));
                }
                // JetStream's answers, on the reply subject of each request: a publish ack
                // (`HPUB subject reply …`), a consumer (`PUB $JS.API.CONSUMER… reply …`).
                for line in ops.split("\r\n") {
                    let words: Vec<&str> = line.split(' ').collect();
                    let answer = match words.as_slice() {
                        ["HPUB", _, reply, _, _] if !b.drop_acks => {
                            Some((*reply, r#"{"stream":"S", "seq":1}"#))
                        }
                        ["PUB", api, reply, _] if api.starts_with("$JS.API.CONSUMER.") => {
                            Some((*reply, r#"{"name":"c","created":"2026-12-07T00:00:00Z"}"#))
                        }
                        _ => None,
                    };
                    if let Some((reply, body)) = answer {
                        replies.push(Reply::Frame(Frame::Binary(
                            format!("MSG {reply} 1 {}\r\n{body}\r\n", body.len())
                                .into_bytes()
                                .into(),
                        )));
                    }
                }
                replies
            }
            _ => vec![],
        }
    }

    /// The server ends the session for good, where the vendor can say so.
    pub fn kick(self) -> Option<Frame> {
        match self {
            Vendor::Toy => Some(text("KICK")),
            Vendor::LiveChatIm | Vendor::LiveChatSeed => Some(text(r#"{"cmd":"conn_close"}"#)),
            Vendor::SocketIo => Some(text("41")),
            Vendor::Nats | Vendor::JetStream => Some(Frame::Binary(
                b"-ERR 'Authorization Violation'\r\n".to_vec().into(),
            )),
            Vendor::Mqtt => None,
        }
    }

    /// "Reconnect, not before `ms`", where the vendor has it.
    pub fn retry(self, ms: u128) -> Option<Frame> {
        match self {
            Vendor::Toy => Some(text(format!("RETRY {ms}"))),
            Vendor::LiveChatIm => Some(text(format!(
                r#"{{"cmd":"reconnect","result":{{"after_ms":{ms}}}}}"#
            ))),
            _ => None,
        }
    }

    /// A message for the user on channel `ch0`.
    pub fn message(self) -> Frame {
        match self {
            Vendor::Toy => text("IN ch0 hello"),
            Vendor::LiveChatIm | Vendor::LiveChatSeed => {
                text(r#"{"cmd":"chat","result":{"room":"ch0","message":"hello"}}"#)
            }
            Vendor::Mqtt => mqtt(Packet::Publish {
                dup: false,
                qos: 1,
                retain: false,
                topic: "ch0".into(),
                packet_id: Some(9),
                payload: b"hello".to_vec().into(),
            }),
            Vendor::SocketIo => text(r#"42["ch0","hello"]"#),
            Vendor::Nats => Frame::Binary(b"MSG ch0 1 5\r\nhello\r\n".to_vec().into()),
            // A consumer's delivery, acked by its reply subject.
            Vendor::JetStream => Frame::Binary(
                b"MSG ch0 1 $JS.ACK.S.c.1.9.9.0.0 5\r\nhello\r\n"
                    .to_vec()
                    .into(),
            ),
        }
    }

    /// The server's own ping (server-driven and two-way heartbeats).
    pub fn server_ping(self) -> Frame {
        match self {
            Vendor::Toy => text("SPING"),
            Vendor::SocketIo => text("2"),
            Vendor::Nats | Vendor::JetStream => Frame::Binary(b"PING\r\n".to_vec().into()),
            // No server ping in these: any frame proves liveness (H3).
            Vendor::LiveChatIm | Vendor::LiveChatSeed => text(r#"{"cmd":"wd_heartbeat"}"#),
            Vendor::Mqtt => mqtt(Packet::PingResp),
        }
    }

    /// Bytes no decoder of this vendor accepts.
    pub fn garbage(self) -> Frame {
        match self {
            Vendor::Mqtt | Vendor::Toy => Frame::Binary(bytes::Bytes::from(vec![0xff, 0x00, 0x13])),
            Vendor::Nats | Vendor::JetStream => Frame::Binary(b"BOGUS\r\n".to_vec().into()),
            _ => text("{garbage"),
        }
    }
}
