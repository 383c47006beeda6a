//! A minimal server-driven-ping protocol, shaped like Engine.IO: the server's open packet
//! dictates the heartbeat, the server pings (`2`) and the client answers (`3`).
//!
//! server → client: `0{"pingInterval":ms,"pingTimeout":ms}`, `2`, `4<channel>:<text>`
//! client → server: `3`, `4<channel>:<text>`; no acks.

use std::time::Duration;

use im_proto::{
    Body, Context, EncodeError, Frame, HeartbeatMode, Message, OutgoingMessage, Protocol,
    ProtocolError, ProtocolEvent, SendInfo,
};

#[derive(Debug, Default)]
pub struct Pinger;

impl Protocol for Pinger {
    fn name(&self) -> &'static str {
        "pinger"
    }

    fn on_open(&mut self, _cx: &mut Context<'_>) {}

    fn on_frame(&mut self, cx: &mut Context<'_>, frame: Frame) -> Result<(), ProtocolError> {
        let Frame::Text(t) = frame else {
            return Err(ProtocolError::UnexpectedFrame("binary"));
        };
        match t.as_bytes().first() {
            Some(b'0') => {
                let v: serde_json::Value = serde_json::from_str(&t[1..])
                    .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
                let field = |name: &str| {
                    v[name]
                        .as_u64()
                        .map(Duration::from_millis)
                        .ok_or_else(|| ProtocolError::Malformed(format!("no {name}")))
                };
                cx.emit(ProtocolEvent::Heartbeat(HeartbeatMode::ServerDriven {
                    interval: field("pingInterval")?,
                    timeout: field("pingTimeout")?,
                }));
                cx.emit(ProtocolEvent::Ready);
            }
            Some(b'2') => {
                cx.transmit(Frame::Text("3".into()));
                cx.emit(ProtocolEvent::ServerPing);
            }
            Some(b'4') => {
                let (channel, text) = t[1..]
                    .split_once(':')
                    .ok_or_else(|| ProtocolError::Malformed("message without channel".into()))?;
                cx.emit(ProtocolEvent::Message(Message::new(
                    channel,
                    Body::Text(text.into()),
                )));
            }
            _ => return Err(ProtocolError::Malformed("unknown packet".into())),
        }
        Ok(())
    }

    fn on_heartbeat(&mut self, cx: &mut Context<'_>) {
        // Never asked for: the server drives. Answering `3` is the only client heartbeat there is.
        cx.transmit(Frame::Text("3".into()));
    }

    fn on_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: &OutgoingMessage,
        _send: SendInfo<'_>,
    ) -> Result<(), EncodeError> {
        let text = msg.body.as_text().ok_or(EncodeError::UnsupportedBody {
            protocol: "pinger",
            body: "binary",
        })?;
        let frame = Frame::Text(format!("4{}:{text}", msg.channel).into());
        cx.transmit_message(frame, im_proto::Delivery::AtMostOnce);
        Ok(())
    }

    fn on_subscribe(&mut self, _cx: &mut Context<'_>, _channel: &str) -> Result<(), EncodeError> {
        Ok(())
    }

    fn on_unsubscribe(&mut self, _cx: &mut Context<'_>, _channel: &str) -> Result<(), EncodeError> {
        Ok(())
    }
}
