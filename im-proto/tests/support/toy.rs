//! A small text protocol that can express every ProtocolEvent, so the property tests can make
//! the scripted server do anything a real vendor might.
//!
//! client → server: `PING`, `MSG <packet> <key> <channel> <body>`, `SUB <ch>`, `UNSUB <ch>`, `BYE`
//! server → client: `WELCOME`, `WELCOME-SD <interval ms> <timeout ms>`, `PONG`, `SPING`,
//! `ACK <packet>`, `NACK <packet>` (refused for good), `IN <ch> <body>`, `KICK`, `RETRY <ms>`,
//! `DENIED`, `SUBOK <ch>`, `NODES <url>…`

use std::collections::HashMap;
use std::time::Duration;

use im_proto::{
    Body, Context, Delivery, EncodeError, Endpoint, Frame, HeartbeatMode, Message, OutgoingMessage,
    Protocol, ProtocolError, ProtocolEvent, SendId, SendInfo,
};

#[derive(Debug, Default)]
pub struct Toy {
    pub acks: bool,
    next_packet: u32,
    packets: HashMap<u32, SendId>,
}

impl Toy {
    pub fn new(acks: bool) -> Self {
        Toy {
            acks,
            ..Toy::default()
        }
    }
}

/// A parsed client frame, as the scripted server sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Msg {
        packet: u32,
        key: String,
        channel: String,
        body: String,
    },
    Sub(String),
    Unsub(String),
    Bye,
}

pub fn parse_client(frame: &Frame) -> Option<ClientFrame> {
    let Frame::Text(t) = frame else { return None };
    let mut w = t.splitn(5, ' ');
    Some(match w.next()? {
        "PING" => ClientFrame::Ping,
        "MSG" => ClientFrame::Msg {
            packet: w.next()?.parse().ok()?,
            key: w.next()?.to_owned(),
            channel: w.next()?.to_owned(),
            body: w.next().unwrap_or_default().to_owned(),
        },
        "SUB" => ClientFrame::Sub(w.next()?.to_owned()),
        "UNSUB" => ClientFrame::Unsub(w.next()?.to_owned()),
        "BYE" => ClientFrame::Bye,
        _ => return None,
    })
}

/// The send id inside a generated idempotency key (`<tag>-<id>`).
pub fn id_of_key(key: &str) -> Option<u64> {
    key.rsplit('-').next()?.parse().ok()
}

fn ms(s: Option<&str>) -> Result<Duration, ProtocolError> {
    s.and_then(|s| s.parse().ok())
        .map(Duration::from_millis)
        .ok_or_else(|| ProtocolError::Malformed("expected milliseconds".into()))
}

impl Protocol for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {
        self.packets.clear();
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let Frame::Text(t) = frame else {
            return Err(ProtocolError::UnexpectedFrame("binary"));
        };
        let mut w = t.split(' ');
        match w.next() {
            Some("WELCOME") => cx.emit(ProtocolEvent::Ready),
            Some("WELCOME-SD") => {
                let interval = ms(w.next())?;
                let timeout = ms(w.next())?;
                cx.emit(ProtocolEvent::Heartbeat(HeartbeatMode::ServerDriven {
                    interval,
                    timeout,
                }));
                cx.emit(ProtocolEvent::Ready);
            }
            Some("PONG") => cx.emit(ProtocolEvent::Pong),
            Some("SPING") => {
                cx.transmit(Frame::Text("SPONG".into()));
                cx.emit(ProtocolEvent::ServerPing);
            }
            Some(answer @ ("ACK" | "NACK")) => {
                let packet: u32 = w
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| ProtocolError::Malformed(format!("{answer} without packet")))?;
                if let Some(id) = self.packets.remove(&packet) {
                    cx.emit(if answer == "ACK" {
                        ProtocolEvent::Acked(id)
                    } else {
                        ProtocolEvent::Refused {
                            id,
                            reason: format!("packet {packet} refused"),
                        }
                    });
                }
            }
            Some("IN") => {
                let channel = w.next().unwrap_or_default();
                let body = w.next().unwrap_or_default();
                cx.emit(ProtocolEvent::Message(Message::new(
                    channel,
                    Body::Text(body.into()),
                )));
            }
            Some("KICK") => cx.emit(ProtocolEvent::Kicked {
                reason: "elsewhere".into(),
            }),
            Some("RETRY") => cx.emit(ProtocolEvent::Reconnect {
                reason: "maintenance".into(),
                after: Some(ms(w.next())?),
            }),
            Some("DENIED") => cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(
                "denied".into(),
            ))),
            Some("SUBOK") => cx.emit(ProtocolEvent::Subscribed(
                w.next().unwrap_or_default().into(),
            )),
            Some("NODES") => cx.emit(ProtocolEvent::Endpoints(w.map(Endpoint::from).collect())),
            _ => return Err(ProtocolError::Malformed(format!("{} bytes", t.len()))),
        }
        Ok(())
    }

    fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
        cx.transmit(Frame::Text("PING".into()));
    }

    fn on_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(), EncodeError> {
        let packet = self.next_packet;
        self.next_packet = self.next_packet.wrapping_add(1);
        let body = String::from_utf8_lossy(msg.body.as_bytes()).replace(' ', "_");
        let frame = Frame::Text(format!("MSG {packet} {} {} {body}", send.key, msg.channel).into());
        let acked = match msg.delivery {
            Some(Delivery::AtLeastOnce) => true,
            Some(_) => false,
            None => self.acks,
        };
        if !acked {
            cx.transmit_message(frame, Delivery::AtMostOnce);
            return Ok(());
        }
        self.packets.insert(packet, send.id);
        cx.transmit_message(frame, Delivery::AtLeastOnce);
        Ok(())
    }

    fn on_subscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError> {
        cx.transmit(Frame::Text(format!("SUB {channel}").into()));
        Ok(())
    }

    fn on_unsubscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError> {
        cx.transmit(Frame::Text(format!("UNSUB {channel}").into()));
        Ok(())
    }

    fn on_close(&mut self, cx: &mut Context<'_>) {
        cx.transmit(Frame::Text("BYE".into()));
    }
}
