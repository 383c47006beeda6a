//! A binary protocol with 16-bit packet-id acks, shaped like MQTT: proof that the core needs no
//! special case for binary frames and vendor-level ids.
//!
//! Frame: `[type | dup<<7][packet id: u16 BE][payload]`.
//! CONNECT=1 CONNACK=2(payload[0]: 0 ok, 5 not authorized, other = unavailable) PUBLISH=3
//! (payload: `[chan len][chan][key len][key][body]`) PUBACK=4 PINGREQ=5 PINGRESP=6 SUBSCRIBE=8.

use std::collections::HashMap;
use std::time::Duration;

use im_proto::{
    Body, Context, EncodeError, Frame, Message, OutgoingMessage, Protocol, ProtocolError,
    ProtocolEvent, SendId, SendInfo,
};

pub const CONNECT: u8 = 1;
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PINGREQ: u8 = 5;
pub const PINGRESP: u8 = 6;
pub const SUBSCRIBE: u8 = 8;
pub const DUP: u8 = 0x80;

#[derive(Debug, Default)]
pub struct Packets {
    next_id: u16,
    inflight: HashMap<u16, SendId>,
}

pub fn packet(kind: u8, id: u16, payload: &[u8]) -> Frame {
    let mut b = vec![kind];
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(payload);
    Frame::Binary(b.into())
}

/// `(kind with flags, packet id, payload)` of a binary frame.
pub fn split(frame: &Frame) -> Option<(u8, u16, &[u8])> {
    let Frame::Binary(b) = frame else { return None };
    if b.len() < 3 {
        return None;
    }
    Some((b[0], u16::from_be_bytes([b[1], b[2]]), &b[3..]))
}

/// `(channel, key, body)` of a PUBLISH payload.
pub fn publish_fields(p: &[u8]) -> Option<(&str, &str, &[u8])> {
    let cl = *p.first()? as usize;
    let channel = std::str::from_utf8(p.get(1..1 + cl)?).ok()?;
    let kl = *p.get(1 + cl)? as usize;
    let key = std::str::from_utf8(p.get(2 + cl..2 + cl + kl)?).ok()?;
    Some((channel, key, p.get(2 + cl + kl..)?))
}

fn publish_payload(channel: &str, key: &str, body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let cl =
        u8::try_from(channel.len()).map_err(|_| EncodeError::InvalidChannel(channel.into()))?;
    let kl = u8::try_from(key.len()).map_err(|_| EncodeError::Other("key too long".into()))?;
    let mut p = vec![cl];
    p.extend_from_slice(channel.as_bytes());
    p.push(kl);
    p.extend_from_slice(key.as_bytes());
    p.extend_from_slice(body);
    Ok(p)
}

impl Protocol for Packets {
    fn name(&self) -> &'static str {
        "packets"
    }

    fn on_open(&mut self, cx: &mut Context<'_>) {
        self.inflight.clear();
        let keepalive = cx
            .heartbeat
            .send_every()
            .unwrap_or(Duration::ZERO)
            .as_secs() as u16;
        cx.transmit(packet(CONNECT, 0, &keepalive.to_be_bytes()));
    }

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        if let Frame::Text(_) = frame {
            return Err(ProtocolError::UnexpectedFrame("text"));
        }
        let (kind, id, payload) =
            split(&frame).ok_or_else(|| ProtocolError::Malformed("short packet".into()))?;
        match kind & !DUP {
            CONNACK => match payload.first() {
                Some(0) => cx.emit(ProtocolEvent::Ready),
                Some(5) => cx.emit(ProtocolEvent::Fatal(ProtocolError::AuthFailed(
                    "not authorized".into(),
                ))),
                Some(code) => cx.emit(ProtocolEvent::Reconnect {
                    reason: format!("refused with code {code}"),
                    after: None,
                }),
                None => return Err(ProtocolError::Malformed("empty CONNACK".into())),
            },
            PUBLISH => {
                let (channel, _key, body) = publish_fields(payload)
                    .ok_or_else(|| ProtocolError::Malformed("bad PUBLISH".into()))?;
                cx.emit(ProtocolEvent::Message(Message::new(
                    channel,
                    Body::Binary(body.to_vec().into()),
                )));
            }
            PUBACK => {
                if let Some(send) = self.inflight.remove(&id) {
                    cx.emit(ProtocolEvent::Acked(send));
                }
            }
            PINGRESP => cx.emit(ProtocolEvent::Pong),
            other => return Err(ProtocolError::Violation(format!("packet type {other}"))),
        }
        Ok(())
    }

    fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
        cx.transmit(packet(PINGREQ, 0, &[]));
    }

    fn on_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: &OutgoingMessage,
        send: SendInfo<'_>,
    ) -> Result<(), EncodeError> {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.inflight.insert(self.next_id, send.id);
        let kind = if send.redelivery {
            PUBLISH | DUP
        } else {
            PUBLISH
        };
        let payload = publish_payload(&msg.channel, send.key, msg.body.as_bytes())?;
        let frame = packet(kind, self.next_id, &payload);
        cx.transmit_message(frame, im_proto::Delivery::AtLeastOnce);
        Ok(())
    }

    fn on_subscribe(&mut self, cx: &mut Context<'_>, channel: &str) -> Result<(), EncodeError> {
        cx.transmit(packet(SUBSCRIBE, 0, channel.as_bytes()));
        Ok(())
    }

    fn on_unsubscribe(&mut self, _cx: &mut Context<'_>, _channel: &str) -> Result<(), EncodeError> {
        Ok(())
    }
}
