//! The loops a user would write by hand for each vendor over raw tokio-tungstenite (or
//! async-tungstenite): what the benchmark holds im against. Each logs in, asks a
//! [`BlastServer`](crate::blast::BlastServer) for `n` messages, and decodes every one down to its
//! body's number, checking the order: the same work im does, with nothing else.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use im_proto::protocols::mqtt::Packet;
use serde::Deserialize;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

use crate::blast::BlastVendor;

/// The part of a blasted body the loops read.
#[derive(Deserialize)]
pub struct Numbered {
    pub n: u64,
}

/// A WebSocket a raw loop reads and writes: tokio-tungstenite's or async-tungstenite's stream.
pub trait WebSocket:
    futures_util::Stream<Item = Result<Message, tungstenite::Error>>
    + futures_util::Sink<Message, Error = tungstenite::Error>
    + Unpin
{
}

impl<S> WebSocket for S where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>>
        + futures_util::Sink<Message, Error = tungstenite::Error>
        + Unpin
{
}

/// The upgrade request for `url`: MQTT brokers want the `mqtt` subprotocol offered.
pub fn request(url: &str, vendor: BlastVendor) -> Request {
    let mut request = url.into_client_request().expect("a WebSocket URL");
    if vendor == BlastVendor::Mqtt {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    }
    request
}

/// The channel a vendor's blast of `n` is asked for on.
pub fn channel(vendor: BlastVendor, n: usize) -> String {
    match vendor {
        BlastVendor::Mqtt => format!("blast/{n}"),
        BlastVendor::SocketIo => format!("blast:{n}"),
        BlastVendor::Nats => format!("blast.{n}"),
    }
}

/// Log in to the reference livechat server by hand (auth1 → auth2 → auth_ok, in room
/// `livechat_1`) on any tungstenite stream.
pub async fn livechat_login<S>(ws: &mut S, user: u64, key: &str)
where
    S: WebSocket,
{
    let Message::Text(auth1) = next(ws).await else {
        panic!("no auth1")
    };
    let auth1: serde_json::Value = serde_json::from_str(auth1.as_str()).unwrap();
    let seed = auth1["result"]["seed"].as_str().expect("a seed");
    let auth2 = serde_json::json!({"cmd": "auth2", "msg_id": auth1["msg_id"],
        "authCode": im_proto::LiveChat::auth_code(seed, key), "room_id": "livechat_1", "userId": user});
    ws.send(Message::Text(auth2.to_string().into()))
        .await
        .unwrap();
    let Message::Text(ok) = next(ws).await else {
        panic!("no auth_ok")
    };
    assert!(ok.as_str().contains("auth_ok"), "{ok}");
}

/// Log in, ask for `n` messages and decode them all; how long from the ask to the last one.
pub async fn receive<S>(ws: &mut S, vendor: BlastVendor, n: usize) -> Duration
where
    S: WebSocket,
{
    match vendor {
        BlastVendor::Mqtt => mqtt(ws, n).await,
        BlastVendor::SocketIo => socketio(ws, n).await,
        BlastVendor::Nats => nats(ws, n).await,
    }
}

async fn next<S>(ws: &mut S) -> Message
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    ws.next()
        .await
        .expect("the source hung up")
        .expect("a frame")
}

fn mqtt_frame(packet: Packet) -> Message {
    let mut out = Vec::new();
    packet.encode(&mut out);
    Message::Binary(out.into())
}

/// A PUBLISH packet's topic and payload, by hand (MQTT 3.1.1 §3.3).
fn publish(packet: &[u8]) -> Option<(&str, &[u8])> {
    let first = *packet.first()?;
    if first >> 4 != 3 {
        return None;
    }
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let byte = *packet.get(at)?;
        len |= usize::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return None;
        }
    }
    let rest = packet.get(at..at + len)?;
    let topic_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let topic = std::str::from_utf8(rest.get(2..2 + topic_len)?).ok()?;
    let id = if (first >> 1) & 3 > 0 { 2 } else { 0 };
    Some((topic, rest.get(2 + topic_len + id..)?))
}

async fn mqtt_login<S>(ws: &mut S)
where
    S: WebSocket,
{
    let connect = Packet::Connect {
        client_id: "raw".into(),
        keep_alive: 0,
        clean_session: true,
        username: None,
        password: None,
    };
    ws.send(mqtt_frame(connect)).await.unwrap();
    let Message::Binary(_connack) = next(ws).await else {
        panic!("no CONNACK")
    };
}

async fn mqtt<S>(ws: &mut S, n: usize) -> Duration
where
    S: WebSocket,
{
    mqtt_login(ws).await;
    let start = Instant::now();
    let subscribe = Packet::Subscribe {
        packet_id: 1,
        topics: vec![(channel(BlastVendor::Mqtt, n), 0)],
    };
    ws.send(mqtt_frame(subscribe)).await.unwrap();
    let mut got = 0;
    while got < n {
        let Message::Binary(bytes) = next(ws).await else {
            continue;
        };
        let Some((_topic, payload)) = publish(&bytes) else {
            continue;
        };
        let body: Numbered = serde_json::from_slice(payload).unwrap();
        assert_eq!(body.n, got as u64);
        got += 1;
    }
    start.elapsed()
}

async fn socketio_login<S>(ws: &mut S)
where
    S: WebSocket,
{
    let Message::Text(_open) = next(ws).await else {
        panic!("no Engine.IO open packet")
    };
    ws.send(Message::Text("40".into())).await.unwrap();
    let Message::Text(_connected) = next(ws).await else {
        panic!("no namespace connect")
    };
}

async fn socketio<S>(ws: &mut S, n: usize) -> Duration
where
    S: WebSocket,
{
    socketio_login(ws).await;
    let start = Instant::now();
    let ask = format!(r#"42["subscribe","{}"]"#, channel(BlastVendor::SocketIo, n));
    ws.send(Message::Text(ask.into())).await.unwrap();
    let mut got = 0;
    while got < n {
        let Message::Text(text) = next(ws).await else {
            continue;
        };
        let Some(event) = text.as_str().strip_prefix("42") else {
            continue;
        };
        let (_name, body): (&str, Numbered) = serde_json::from_str(event).unwrap();
        assert_eq!(body.n, got as u64);
        got += 1;
    }
    start.elapsed()
}

async fn nats<S>(ws: &mut S, n: usize) -> Duration
where
    S: WebSocket,
{
    let Message::Binary(_info) = next(ws).await else {
        panic!("no INFO")
    };
    let connect = "CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n";
    ws.send(Message::Binary(connect.as_bytes().to_vec().into()))
        .await
        .unwrap();
    let Message::Binary(_pong) = next(ws).await else {
        panic!("no PONG")
    };
    let start = Instant::now();
    let sub = format!("SUB {} 1\r\n", channel(BlastVendor::Nats, n));
    ws.send(Message::Binary(sub.into_bytes().into()))
        .await
        .unwrap();
    let mut got = 0;
    while got < n {
        let Message::Binary(bytes) = next(ws).await else {
            continue;
        };
        // Every operation of the frame: `MSG subject sid size\r\n<payload>\r\n`.
        let mut rest: &[u8] = &bytes;
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&rest[..eol]).unwrap();
            let mut words = line.split_ascii_whitespace();
            if words.next() != Some("MSG") {
                rest = &rest[eol + 2..];
                continue;
            }
            let size: usize = words.next_back().unwrap().parse().unwrap();
            let payload = &rest[eol + 2..eol + 2 + size];
            let body: Numbered = serde_json::from_slice(payload).unwrap();
            assert_eq!(body.n, got as u64);
            got += 1;
            rest = &rest[eol + 2 + size + 2..];
        }
    }
    start.elapsed()
}

/// Log in, then `n` sequential round trips of an acknowledged message, each its time from the
/// send to the ack: MQTT a QoS 1 PUBLISH of [`body`](crate::blast::body) and its PUBACK,
/// Socket.IO an emit with an ack id and its `43<id>[]`. `None` for NATS, whose core protocol
/// acknowledges nothing.
pub async fn round_trips<S>(ws: &mut S, vendor: BlastVendor, n: usize) -> Option<Vec<Duration>>
where
    S: WebSocket,
{
    let mut out = Vec::with_capacity(n);
    match vendor {
        BlastVendor::Mqtt => {
            mqtt_login(ws).await;
            for i in 0..n {
                let start = Instant::now();
                let id = (i % usize::from(u16::MAX)) as u16 + 1;
                let mut frame = Vec::new();
                crate::blast::publish_frame(&mut frame, "echo", Some(id), i);
                ws.send(Message::Binary(frame.into())).await.unwrap();
                loop {
                    let Message::Binary(bytes) = next(ws).await else {
                        continue;
                    };
                    if bytes.first() == Some(&0x40) && bytes.get(2..4) == Some(&id.to_be_bytes()) {
                        break;
                    }
                }
                out.push(start.elapsed());
            }
        }
        BlastVendor::SocketIo => {
            socketio_login(ws).await;
            for i in 0..n {
                let start = Instant::now();
                let id = i + 1;
                let emit = format!(r#"42{id}["echo",{}]"#, crate::blast::body(i));
                ws.send(Message::Text(emit.into())).await.unwrap();
                let ack = format!("43{id}[");
                loop {
                    let Message::Text(text) = next(ws).await else {
                        continue;
                    };
                    if text.as_str().starts_with(&ack) {
                        break;
                    }
                }
                out.push(start.elapsed());
            }
        }
        BlastVendor::Nats => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_decoded_publish_matches_the_codec() {
        for qos in [0, 1] {
            let mut out = Vec::new();
            Packet::Publish {
                dup: false,
                qos,
                retain: false,
                topic: "blast/3".into(),
                packet_id: (qos > 0).then_some(9),
                payload: vec![b'x'; 300].into(),
            }
            .encode(&mut out);
            assert_eq!(publish(&out), Some(("blast/3", &[b'x'; 300][..])));
        }
        assert_eq!(publish(&[0x20, 2, 0, 0]), None, "a CONNACK");
    }
}
