//! The benchmark's traffic sources for MQTT, Socket.IO and NATS: a loopback WebSocket server
//! that speaks just enough of a vendor's handshake, then writes pre-encoded message frames as
//! fast as the socket takes them, so that the client reading them is the bottleneck. (The
//! livechat source is the reference server's `blast:N` room.)
//!
//! What starts a blast of `N` messages, and what they look like:
//!
//! | vendor | the client asks | each message |
//! |---|---|---|
//! | MQTT 3.1.1 | SUBSCRIBE `blast/N` | PUBLISH QoS 0, topic `blast/N`, the body as payload |
//! | Socket.IO 4 | `42["subscribe","blast:N"]` (acked if it asks) | `42["blast:N",<body>]` |
//! | NATS | `SUB blast.N <sid>` | `MSG blast.N <sid> <size>` and the body |
//!
//! The body of message `i` is [`body`]`(i)`, `{"n":i,"p":"xx…"}`, 48 bytes. A blast's frames are
//! encoded once, when it is first asked for, and kept (`prepared`): every later blast of
//! the same channel writes them as they are, so what a measured run times is the client. The
//! reference server's livechat `blast:N` room keeps its frames the same way. The server also
//! answers what a round trip needs: MQTT QoS 1 PUBLISH → PUBACK, a Socket.IO emit with an ack
//! id → `43<id>[]`, NATS `PING` → `PONG`.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::{SinkExt, StreamExt};
use im_proto::protocols::mqtt::Packet;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

/// Which vendor a [`BlastServer`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlastVendor {
    Mqtt,
    SocketIo,
    Nats,
}

/// The body of blasted message `i`: `{"n":i,"p":"xx…"}`, padded to 48 bytes.
pub fn body(i: usize) -> String {
    let mut body = format!(r#"{{"n":{i},"p":""}}"#);
    let pad = 48usize.saturating_sub(body.len());
    body.insert_str(body.len() - 2, &"x".repeat(pad));
    body
}

/// Append the QoS 0 (no `packet_id`) or QoS 1 PUBLISH of message `i` on `topic` to `out`.
pub fn publish_frame(out: &mut Vec<u8>, topic: &str, packet_id: Option<u16>, i: usize) {
    let publish = im_proto::protocols::mqtt::Publish {
        dup: false,
        qos: u8::from(packet_id.is_some()),
        retain: false,
        packet_id,
    };
    publish.encode(out, topic, body(i).as_bytes());
}

/// A blast source on a free loopback port, on the test servers' runtime; stopped on drop.
pub struct BlastServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BlastServer {
    pub fn start(vendor: BlastVendor) -> io::Result<Self> {
        let listener = crate::runtime::listen(([127, 0, 0, 1], 0).into())?;
        let addr = listener.local_addr()?;
        let task = crate::runtime::get().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = serve(vendor, stream).await;
                });
            }
        });
        Ok(BlastServer { addr, task })
    }

    /// The WebSocket URL (Socket.IO's Engine.IO path included).
    pub fn url(&self) -> String {
        format!("ws://{}/socket.io/?EIO=4&transport=websocket", self.addr)
    }
}

impl Drop for BlastServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(vendor: BlastVendor, stream: tokio::net::TcpStream) -> Result<(), Error> {
    // MQTT clients offer the `mqtt` subprotocol and expect it back. (The error type is
    // tungstenite's callback contract, not ours to shrink.)
    #[allow(clippy::result_large_err)]
    let agree = move |_: &Request, mut response: Response| {
        if vendor == BlastVendor::Mqtt {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        }
        Ok(response)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(stream, agree).await?;
    match vendor {
        BlastVendor::Mqtt => mqtt(&mut ws).await,
        BlastVendor::SocketIo => socketio(&mut ws).await,
        BlastVendor::Nats => nats(&mut ws).await,
    }
}

type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Write the `n` frames of the blast `key` names, made by `frame` the first time (see
/// `prepared`), flushing every 256: every vendor's source, and the reference server's
/// livechat `blast:N` room.
pub async fn blast<S>(
    ws: &mut WebSocketStream<S>,
    key: String,
    n: usize,
    frame: impl Fn(usize) -> Message,
) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frames = prepared(key, n, frame);
    for (i, frame) in frames.iter().enumerate() {
        // A clone shares the frame's buffer.
        ws.feed(frame.clone()).await?;
        if i % 256 == 255 {
            ws.flush().await?;
        }
    }
    ws.flush().await
}

/// The frames of the blast `key` names (its vendor, channel and subscription): encoded by
/// `frame` the first time and kept, so that a measured blast costs the source a write per frame
/// and nothing else. A benchmark's unmeasured first round prepares them. At most
/// eight are kept (`PREPARED_BLASTS`), the oldest forgotten first.
fn prepared(key: String, n: usize, frame: impl Fn(usize) -> Message) -> Arc<[Message]> {
    static KEPT: OnceLock<Mutex<Vec<Prepared>>> = OnceLock::new();
    let kept = KEPT.get_or_init(Mutex::default);
    let found = kept
        .lock()
        .expect("no panic while holding the blasts")
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, frames)| frames.clone());
    if let Some(frames) = found {
        return frames;
    }
    let frames: Arc<[Message]> = (0..n).map(frame).collect();
    let mut kept = kept.lock().expect("no panic while holding the blasts");
    if kept.len() == PREPARED_BLASTS {
        kept.remove(0);
    }
    kept.push((key, frames.clone()));
    frames
}

/// A blast's key and its frames.
type Prepared = (String, Arc<[Message]>);

/// Blasts kept encoded: one per vendor and size a bench run asks for, with room to spare.
const PREPARED_BLASTS: usize = 8;

fn mqtt_frame(packet: Packet) -> Message {
    let mut out = Vec::new();
    packet.encode(&mut out);
    Message::Binary(out.into())
}

async fn mqtt(ws: &mut Ws) -> Result<(), Error> {
    while let Some(message) = ws.next().await {
        let Message::Binary(bytes) = message? else {
            continue;
        };
        let mut at = 0;
        while let Ok(Some((packet, used))) = Packet::decode(&bytes[at..], 1 << 20) {
            at += used;
            match packet {
                Packet::Connect { .. } => {
                    ws.send(mqtt_frame(Packet::ConnAck {
                        session_present: false,
                        code: 0,
                    }))
                    .await?;
                }
                Packet::Subscribe { packet_id, topics } => {
                    ws.send(mqtt_frame(Packet::SubAck {
                        packet_id,
                        codes: vec![0; topics.len()],
                    }))
                    .await?;
                    for (topic, _) in topics {
                        let Some(n) = topic.strip_prefix("blast/").and_then(|n| n.parse().ok())
                        else {
                            continue;
                        };
                        blast(ws, format!("mqtt {topic}"), n, |i| {
                            let mut frame = Vec::new();
                            publish_frame(&mut frame, &topic, None, i);
                            Message::Binary(frame.into())
                        })
                        .await?;
                    }
                }
                Packet::Publish {
                    packet_id: Some(packet_id),
                    ..
                } => ws.send(mqtt_frame(Packet::PubAck { packet_id })).await?,
                Packet::PingReq => ws.send(mqtt_frame(Packet::PingResp)).await?,
                _ => {}
            }
        }
    }
    Ok(())
}

async fn socketio(ws: &mut Ws) -> Result<(), Error> {
    ws.send(Message::Text(
        r#"0{"sid":"blast","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            .into(),
    ))
    .await?;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let text = text.as_str();
        if text == "40" || text.starts_with("40{") {
            ws.send(Message::Text(r#"40{"sid":"s"}"#.into())).await?;
            continue;
        }
        let Some(event) = text.strip_prefix("42") else {
            continue;
        };
        let digits: String = event.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            ws.send(Message::Text(format!("43{digits}[]").into()))
                .await?;
        }
        let args: Vec<serde_json::Value> =
            serde_json::from_str(&event[digits.len()..]).unwrap_or_default();
        let wanted = (args.first().and_then(|e| e.as_str()) == Some("subscribe"))
            .then(|| args.get(1)?.as_str()?.strip_prefix("blast:")?.parse().ok())
            .flatten();
        if let Some(n) = wanted {
            let prefix = format!(r#"42["blast:{n}","#);
            blast(ws, prefix.clone(), n, |i| {
                Message::Text(format!("{prefix}{}]", body(i)).into())
            })
            .await?;
        }
    }
    Ok(())
}

async fn nats(ws: &mut Ws) -> Result<(), Error> {
    let info = "INFO {\"server_id\":\"blast\",\"max_payload\":1048576,\"headers\":true}\r\n";
    ws.send(Message::Binary(info.as_bytes().to_vec().into()))
        .await?;
    let mut pending = Vec::new();
    while let Some(message) = ws.next().await {
        let Message::Binary(bytes) = message? else {
            continue;
        };
        pending.extend_from_slice(&bytes);
        // Whole lines only (the client's ops are lines; a PUB's payload is a line of its own).
        while let Some(eol) = pending.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&pending[..eol]).into_owned();
            pending.drain(..eol + 2);
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            match words.as_slice() {
                ["PING"] => {
                    ws.send(Message::Binary(b"PONG\r\n".to_vec().into()))
                        .await?
                }
                ["SUB", subject, sid] => {
                    let Some(n) = subject.strip_prefix("blast.").and_then(|n| n.parse().ok())
                    else {
                        continue;
                    };
                    let subject = subject.to_string();
                    let sid = sid.to_string();
                    blast(ws, format!("nats {subject} {sid}"), n, |i| {
                        let body = body(i);
                        Message::Binary(
                            format!("MSG {subject} {sid} {}\r\n{body}\r\n", body.len())
                                .into_bytes()
                                .into(),
                        )
                    })
                    .await?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_48_bytes_of_json() {
        for i in [0, 7, 99_999] {
            let b = body(i);
            assert_eq!(b.len(), 48, "{b}");
            let v: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["n"], i);
        }
    }
}
