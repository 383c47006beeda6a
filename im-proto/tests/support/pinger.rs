//! A minimal server-driven-ping protocol, shaped like Engine.IO: the server's open packet
//! dictates the heartbeat, the server pings (`2`) and the client answers (`3`).
//!
//! server → client: `0{"pingInterval":ms,"pingTimeout":ms}`, `2`, `4<channel>:<text>`
//! client → server: `3`, `4<channel>:<text>`; no acks.

use std::time::{Duration, Instant};

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

    fn heartbeat(&mut self, _now: Instant) -> Frame {
        // Never asked for: the server drives. Answering `3` is the only client heartbeat there is.
        Frame::Text("3".into())
    }

    fn encode_message(
        &mut self,
        msg: &OutgoingMessage,
        _send: SendInfo<'_>,
    ) -> Result<im_proto::Encoded, EncodeError> {
        let text = msg.body.as_text().ok_or(EncodeError::UnsupportedBody {
            protocol: "pinger",
            body: "binary",
        })?;
        Ok(im_proto::Encoded::at_most_once(Frame::Text(
            format!("4{}:{text}", msg.channel).into(),
        )))
    }

    fn encode_subscribe(&mut self, _channel: &str) -> Result<Option<Frame>, EncodeError> {
        Ok(None)
    }

    fn encode_unsubscribe(&mut self, _channel: &str) -> Result<Option<Frame>, EncodeError> {
        Ok(None)
    }
}
