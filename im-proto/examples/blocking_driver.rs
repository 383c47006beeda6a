//! im-proto driven by hand: one thread, blocking `std::net` + `tungstenite`, no async at all.
//! The loop is the one of im-proto's crate docs, step by step.
//!
//! ```sh
//! cargo run -p im-tests --bin livechat-server -- --port 9001 --key secret &
//! cargo run -p im-proto --example blocking_driver -- ws://127.0.0.1:9001/ws secret 20
//! ```
//!
//! Sends N numbered chat messages, one every 100 ms, prints every event, and closes once all
//! of them are acknowledged. Survives server restarts. `ws://` only: for `wss://`, wrap the
//! `TcpStream` in `rustls::StreamOwned` before the handshake.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use im_proto::{
    Client, Config, ConnId, Event, Frame, HeartbeatMode, LiveChat, OutgoingMessage, Output,
    ReconnectPolicy, TransportError, TransportEvent,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

const SEND_EVERY: Duration = Duration::from_millis(100);

/// The one socket the core asked for.
struct Socket {
    conn: ConnId,
    ws: WebSocket<TcpStream>,
}

/// Step 2, `Output::Connect`: open the socket, blocking, within the core's connect timeout.
/// Failures are reported typed, so the application can tell DNS from a refused port.
fn open(url: &str, timeout: Duration) -> Result<WebSocket<TcpStream>, TransportError> {
    let invalid = |e: &dyn std::fmt::Display| TransportError::InvalidRequest(e.to_string());
    let uri: tungstenite::http::Uri = url.parse().map_err(|e| invalid(&e))?;
    let host = uri.host().ok_or_else(|| invalid(&"no host"))?;
    let dns = |detail: String| TransportError::Dns {
        host: host.to_owned(),
        detail,
    };
    let addr = (host, uri.port_u16().unwrap_or(80))
        .to_socket_addrs()
        .map_err(|e| dns(e.to_string()))?
        .next()
        .ok_or_else(|| dns("no address".into()))?;
    let tcp =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| TransportError::from_io(&e))?;
    tcp.set_nodelay(true)
        .map_err(|e| TransportError::from_io(&e))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| TransportError::from_io(&e))?;
    let (ws, _) = tungstenite::client(url, tcp).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => ws_failure(&e),
        // A read timed out mid-handshake (the socket's read timeout).
        tungstenite::HandshakeError::Interrupted(_) => TransportError::TimedOut,
    })?;
    Ok(ws)
}

fn ws_failure(e: &tungstenite::Error) -> TransportError {
    match e {
        tungstenite::Error::Io(e) => TransportError::from_io(e),
        tungstenite::Error::Http(response) => {
            TransportError::WebSocket(format!("HTTP {}", response.status()))
        }
        other => TransportError::WebSocket(other.to_string()),
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => Message::Text(t.as_str().into()),
        Frame::Binary(b) => Message::Binary(b),
        Frame::Ping(p) => Message::Ping(p.into()),
        Frame::Pong(p) => Message::Pong(p.into()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(key), Some(count)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: blocking-driver WS_URL ROOM_KEY MESSAGES");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("MESSAGES is a number");

    // Step 1: config, protocol, client; connect.
    let config = Config::builder()
        .endpoint(url.as_str())
        .heartbeat(HeartbeatMode::ClientDriven {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        })
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(50))
                .max_delay(Duration::from_millis(500)),
        )
        // Entropy per process: the jitter, and idempotency keys that never repeat across runs
        // (std's hasher keys are drawn from the OS).
        .seed({
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        })
        .build()
        .expect("valid config");
    let mut client = Client::new(config, Box::new(LiveChat::new(1, 42, key)), Instant::now())
        .expect("a config with a seed");
    client.connect(Instant::now());

    let mut socket: Option<Socket> = None;
    let (mut sent, mut acked) = (0usize, 0usize);
    let mut next_send = Instant::now();

    loop {
        // Step 2: drain every output and do what it says, up to the deadline that ends it.
        let timeout = loop {
            match client.poll_output() {
                Output::Timeout(deadline) => break deadline,
                Output::Connect { conn, endpoint, .. } => {
                    let timeout = client.config().connect_timeout;
                    match open(endpoint.url(), timeout) {
                        Ok(ws) => {
                            socket = Some(Socket { conn, ws });
                            client.handle_transport(Instant::now(), conn, TransportEvent::Opened);
                        }
                        Err(e) => {
                            client.handle_transport(Instant::now(), conn, TransportEvent::Failed(e))
                        }
                    }
                }
                Output::Transmit { conn, frame } => {
                    if let Some(s) = socket.as_mut().filter(|s| s.conn == conn) {
                        if let Err(e) = s.ws.send(to_message(frame)) {
                            socket = None;
                            client.handle_transport(
                                Instant::now(),
                                conn,
                                TransportEvent::Failed(ws_failure(&e)),
                            );
                        }
                    }
                }
                Output::Disconnect { conn, code, reason } => {
                    if let Some(mut s) = socket.take_if(|s| s.conn == conn) {
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        let _ = s.ws.close(Some(frame));
                        let _ = s.ws.flush();
                    }
                }
                Output::Event(event) => {
                    match &event {
                        Event::Acked { .. } => {
                            acked += 1;
                            println!("acked {acked}");
                        }
                        Event::Connected { .. } => println!("connected"),
                        Event::Closed { reason } => {
                            println!("closed: {reason:?}");
                            std::process::exit(if acked == count { 0 } else { 1 });
                        }
                        other => println!("{other:?}"),
                    }
                    if acked == count {
                        client.close(Instant::now());
                    }
                }
            }
        };

        // The application's own work shares the loop: one message every SEND_EVERY.
        let now = Instant::now();
        if sent < count && now >= next_send {
            let msg = OutgoingMessage::json("blocking", &serde_json::json!({ "n": sent }))
                .expect("serializable");
            client.send(now, msg).expect("outbox has room");
            sent += 1;
            next_send = now + SEND_EVERY;
            continue;
        }

        // Step 3: wait for the earliest of the core's deadline, our next send, or the socket.
        let deadline = [timeout, (sent < count).then_some(next_send)]
            .into_iter()
            .flatten()
            .min();
        let wait = deadline.map(|d| d.saturating_duration_since(now));
        match socket.as_mut() {
            Some(s) => {
                let wait = wait
                    .unwrap_or(Duration::from_secs(60))
                    .max(Duration::from_millis(1));
                let _ = s.ws.get_ref().set_read_timeout(Some(wait));
                let conn = s.conn;
                match s.ws.read() {
                    Ok(message) => {
                        let event = match message {
                            Message::Text(t) => {
                                TransportEvent::Frame(Frame::Text(t.as_str().into()))
                            }
                            Message::Binary(b) => TransportEvent::Frame(Frame::Binary(b)),
                            Message::Ping(p) => TransportEvent::Frame(Frame::Ping(p.into())),
                            Message::Pong(p) => TransportEvent::Frame(Frame::Pong(p.into())),
                            Message::Close(f) => {
                                socket = None;
                                TransportEvent::Closed {
                                    code: f.as_ref().map(|f| u16::from(f.code)),
                                    reason: String::new(),
                                }
                            }
                            Message::Frame(_) => continue,
                        };
                        client.handle_transport(Instant::now(), conn, event);
                    }
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        client.handle_timeout(Instant::now());
                    }
                    Err(e) => {
                        socket = None;
                        client.handle_transport(
                            Instant::now(),
                            conn,
                            TransportEvent::Failed(ws_failure(&e)),
                        );
                    }
                }
            }
            None => {
                // No socket (backing off): just sleep to the deadline. A thread of our own, so
                // sleeping is the wait.
                if let Some(wait) = wait {
                    std::thread::sleep(wait);
                }
                client.handle_timeout(Instant::now());
            }
        }
        // Step 4: back to the drain.
    }
}
