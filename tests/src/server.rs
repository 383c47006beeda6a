//! The reference livechat server (docs/protocols/livechat.md), with fault controls for tests.
//!
//! Real sockets on 127.0.0.1: tokio + tokio-tungstenite on the server side. One room key for
//! every room (`md5(seed + key)`), `conn_close` to the older session when a user logs in twice.
//! Two dialects:
//! - im's (the default; `"dialect":"im"` in `auth1`): `auth_ok`/`auth_fail`, rooms, broadcast to
//!   the other members, acks, deduplication by (user, idempotency key), `reconnect` hints.
//! - the seed's, exactly ([`LiveChatServer::start_seed_exact`], `livechat-server --seed-exact`):
//!   `auth1` → `auth2` and nothing to confirm it (a wrong code just closes the socket), heartbeat
//!   answers, `conn_close`, and a client's chat frame relayed to the other sessions of its home
//!   room as `{"cmd":"chat","result":{"from":U,"message":M}}`; no acks, no rooms, nothing else.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use im_proto::LiveChat;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as RawFrame;
use tokio_tungstenite::tungstenite::Message;

/// Messages one session may have queued before the server gives up on it (a slow reader).
const SESSION_QUEUE: usize = 8_192;

/// A chat message the server accepted, once, after deduplication.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    pub user: u64,
    pub room: String,
    pub key: String,
    pub message: Value,
}

struct Session {
    /// The rooms joined (im), or the home room named in `auth2` (seed).
    rooms: HashSet<String>,
    tx: mpsc::Sender<Message>,
}

/// A message of a room's history, as a join replays it.
struct Logged {
    seq: u64,
    from: u64,
    key: Option<String>,
    message: Value,
}

/// A room's history: the next message's place, and the latest messages (at most the resume
/// window) for a rejoin to replay.
#[derive(Default)]
struct RoomLog {
    last_seq: u64,
    recent: VecDeque<Logged>,
}

impl RoomLog {
    /// Record a message; its place in the room.
    fn push(&mut self, from: u64, key: Option<String>, message: Value, window: usize) -> u64 {
        self.last_seq += 1;
        self.recent.push_back(Logged {
            seq: self.last_seq,
            from,
            key,
            message,
        });
        while self.recent.len() > window {
            self.recent.pop_front();
        }
        self.last_seq
    }
}

/// The broadcast frame of a logged message.
fn chat_frame(room: &str, m: &Logged) -> Value {
    let mut result = json!({"room": room, "from": m.from, "seq": m.seq, "message": m.message});
    if let Some(key) = &m.key {
        result["msg_id"] = json!(key);
    }
    json!({"cmd": "chat", "result": result})
}

#[derive(Default)]
struct State {
    sessions: HashMap<u64, Session>,
    /// user → current session id
    users: HashMap<u64, u64>,
    seen: HashSet<(u64, String)>,
    delivered: Vec<Delivered>,
    /// Each room's history (im's dialect).
    rooms: HashMap<String, RoomLog>,
    /// Retransmissions recognised by their idempotency key and not delivered again (im); in
    /// the seed's dialect, which cannot deduplicate, receipts of a key already received.
    duplicates: usize,
}

struct Inner {
    key: String,
    /// Speak exactly the seed's protocol, nothing of im's dialect.
    seed_exact: bool,
    /// Serve `wss://` with this certificate when set.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The `Authorization` header of each upgrade request, in order (None when absent).
    authorizations: Mutex<Vec<Option<String>>>,
    state: Mutex<State>,
    answer_heartbeats: AtomicBool,
    hang_handshake: AtomicBool,
    /// Close every session right after its login (a flapping server).
    close_after_login: AtomicBool,
    /// Answer every WebSocket upgrade with this HTTP status instead (0 = accept).
    refuse_upgrade: std::sync::atomic::AtomicU16,
    /// Play the hostile script to every login.
    hostile: AtomicBool,
    /// How many of a room's latest messages a `join` replays (0: none, the default).
    history: AtomicUsize,
    /// How many of a room's latest messages are kept for a rejoin to resume from.
    resume_window: AtomicUsize,
    /// This server's history: a client's resume point from another one means nothing here.
    epoch: String,
    /// TCP connections accepted.
    accepted: AtomicUsize,
    /// When each TCP connection was accepted.
    accept_times: Mutex<Vec<std::time::Instant>>,
    /// Successful logins.
    logins: AtomicUsize,
    /// Heartbeats received (`wd_heartbeat`), answered or not.
    heartbeats: AtomicUsize,
    next_session: AtomicU64,
    /// Bumped to drop every connection abruptly.
    generation: watch::Sender<u64>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running reference server. Dropping it stops it.
pub struct LiveChatServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    listener: Option<JoinHandle<()>>,
}

impl LiveChatServer {
    /// Start on a free loopback port. The server runs on its own runtime ([`crate::runtime`]),
    /// so it serves clients of any runtime and its API needs none.
    pub fn start(key: &str) -> io::Result<Self> {
        Self::start_on(0, key)
    }

    /// Start on `port` of 127.0.0.1 (0 = any free port).
    pub fn start_on(port: u16, key: &str) -> io::Result<Self> {
        Self::launch(port, key, None, false)
    }

    /// A server that speaks exactly the seed's protocol (see the module docs), on a free port.
    pub fn start_seed_exact(key: &str) -> io::Result<Self> {
        Self::launch(0, key, None, true)
    }

    /// [`start_seed_exact`](Self::start_seed_exact) on `port` (0 = any free port).
    pub fn start_seed_exact_on(port: u16, key: &str) -> io::Result<Self> {
        Self::launch(port, key, None, true)
    }

    /// Start a `wss://` server on a free port with a freshly generated self-signed certificate
    /// for `localhost`; returns the certificate (DER) so a test can choose to trust it.
    pub fn start_tls(key: &str) -> io::Result<(Self, Vec<u8>)> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(io::Error::other)?;
        let cert_der = certified.cert.der().to_vec();
        let key_der =
            rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
                .map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone().into()], key_der)
            .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok((Self::launch(0, key, Some(acceptor), false)?, cert_der))
    }

    fn launch(
        port: u16,
        key: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
        seed_exact: bool,
    ) -> io::Result<Self> {
        let inner = Arc::new(Inner {
            key: key.to_owned(),
            seed_exact,
            tls,
            authorizations: Mutex::new(Vec::new()),
            state: Mutex::new(State::default()),
            answer_heartbeats: AtomicBool::new(true),
            hang_handshake: AtomicBool::new(false),
            close_after_login: AtomicBool::new(false),
            refuse_upgrade: std::sync::atomic::AtomicU16::new(0),
            hostile: AtomicBool::new(false),
            history: AtomicUsize::new(0),
            resume_window: AtomicUsize::new(DEFAULT_RESUME_WINDOW),
            epoch: format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
            ),
            accepted: AtomicUsize::new(0),
            accept_times: Mutex::new(Vec::new()),
            logins: AtomicUsize::new(0),
            heartbeats: AtomicUsize::new(0),
            next_session: AtomicU64::new(1),
            generation: watch::channel(0).0,
        });
        let listener = crate::runtime::listen(([127, 0, 0, 1], port).into())?;
        let addr = listener.local_addr()?;
        let task = crate::runtime::get().spawn(accept_loop(listener, inner.clone()));
        Ok(LiveChatServer {
            inner,
            addr,
            listener: Some(task),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:PORT/ws`, or `wss://localhost:PORT/ws` for a TLS server.
    pub fn url(&self) -> String {
        match self.inner.tls {
            Some(_) => format!("wss://localhost:{}/ws", self.addr.port()),
            None => format!("ws://{}/ws", self.addr),
        }
    }

    /// The `Authorization` header of every WebSocket upgrade so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.inner
            .authorizations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// When each TCP connection was accepted, in order.
    pub fn accept_times(&self) -> Vec<std::time::Instant> {
        self.inner
            .accept_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.inner.logins.load(Ordering::SeqCst)
    }

    /// Heartbeats received from clients so far.
    pub fn heartbeats(&self) -> usize {
        self.inner.heartbeats.load(Ordering::Relaxed)
    }

    /// Sessions currently logged in.
    pub fn online(&self) -> usize {
        self.inner.state().sessions.len()
    }

    /// Every chat message accepted, in order, each once.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.inner.state().delivered.clone()
    }

    /// Chat messages received again (same user and key) and acked without a second delivery.
    pub fn duplicates(&self) -> usize {
        self.inner.state().duplicates
    }

    /// Fault: stop answering heartbeats (the link looks alive to TCP, dead to the protocol).
    pub fn set_answer_heartbeats(&self, on: bool) {
        self.inner.answer_heartbeats.store(on, Ordering::SeqCst);
    }

    /// Fault: greet every login with the hostile script: garbage, binary, 10,000 unknown
    /// commands, deep JSON, a 10 MiB frame, a flood of [`HOSTILE_FLOOD`] messages, a valid
    /// `marker-0` message, then invalid UTF-8. Later logins get only `marker-<login>`.
    pub fn set_hostile(&self, on: bool) {
        self.inner.hostile.store(on, Ordering::SeqCst);
    }

    /// Replay a room's latest `n` messages to whoever joins it (as chat servers show recent
    /// history), so a client that rejoins after an outage sees what was said meanwhile; each
    /// carries its `msg_id`, for the client to show once. Off (0) by default.
    pub fn set_history(&self, n: usize) {
        self.inner.history.store(n, Ordering::SeqCst);
    }

    /// Keep a room's latest `n` messages for resuming clients (default
    /// [`DEFAULT_RESUME_WINDOW`]): a client away for more than `n` messages of a room cannot
    /// get them all, and the `joined` answering its resume says so.
    pub fn set_resume_window(&self, n: usize) {
        self.inner.resume_window.store(n, Ordering::SeqCst);
    }

    /// Fault: accept TCP connections but never complete the WebSocket handshake.
    pub fn set_hang_handshake(&self, on: bool) {
        self.inner.hang_handshake.store(on, Ordering::SeqCst);
    }

    /// Fault: answer every WebSocket upgrade with HTTP `status` (401: bad credentials), or
    /// accept again with `None`.
    pub fn set_refuse_upgrade(&self, status: Option<u16>) {
        self.inner
            .refuse_upgrade
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Fault: accept and log in every session, then close it at once (a server that flaps).
    pub fn set_close_after_login(&self, on: bool) {
        self.inner.close_after_login.store(on, Ordering::SeqCst);
    }

    /// Fault: drop every connection at once, without a close frame.
    pub fn drop_all(&self) {
        self.inner.generation.send_modify(|g| *g += 1);
        let mut state = self.inner.state();
        state.sessions.clear();
        state.users.clear();
    }

    /// Fault: stop listening and drop every connection. New connects are refused until
    /// [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
            // Wait for the abort to take effect, so the port is free when this returns.
            let _ = crate::runtime::wait(task);
        }
        self.drop_all();
    }

    /// Listen again on the same port (a restart keeps accepted messages, as a database would).
    pub fn resume(&mut self) -> io::Result<()> {
        if self.listener.is_none() {
            let listener = crate::runtime::listen(self.addr)?;
            self.listener =
                Some(crate::runtime::get().spawn(accept_loop(listener, self.inner.clone())));
        }
        Ok(())
    }

    /// Fault: stop, then listen again on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.resume()
    }

    /// Fault: send a raw message to every session (garbage, oversize, binary).
    pub fn send_raw(&self, message: Message) {
        for session in self.inner.state().sessions.values() {
            let _ = session.tx.try_send(message.clone());
        }
    }

    /// Fault: a text frame whose payload is not UTF-8.
    pub fn send_invalid_utf8(&self) {
        let frame = RawFrame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
        self.send_raw(Message::Frame(frame));
    }

    /// Broadcast a chat message from the server to a room's members.
    pub fn broadcast(&self, room: &str, message: Value) {
        let window = self.inner.resume_window.load(Ordering::SeqCst);
        let mut state = self.inner.state();
        let log = state.rooms.entry(room.to_owned()).or_default();
        log.push(0, None, message, window);
        let frame = chat_frame(room, log.recent.back().expect("just logged"));
        for s in state.sessions.values().filter(|s| s.rooms.contains(room)) {
            let _ = s.tx.try_send(Message::Text(frame.to_string().into()));
        }
    }

    /// Ask every session to reconnect, not sooner than `after`.
    pub fn ask_reconnect(&self, after: Duration) {
        let frame = json!({"cmd": "reconnect", "result": {"reason": "maintenance", "after_ms": after.as_millis() as u64}});
        self.send_raw(Message::Text(frame.to_string().into()));
    }

    /// Kick a user's session (as a second login would).
    pub fn kick(&self, user: u64) {
        let state = self.inner.state();
        if let Some(s) = state.users.get(&user).and_then(|id| state.sessions.get(id)) {
            let _ = s.tx.try_send(Message::Text(
                r#"{"cmd":"conn_close","result":{"reason":"kicked by server"}}"#.into(),
            ));
        }
    }
}

impl Drop for LiveChatServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    // Half-open handshakes are parked here so they stay open until the next `drop_all`.
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        inner.accepted.fetch_add(1, Ordering::SeqCst);
        inner
            .accept_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(std::time::Instant::now());
        let inner = inner.clone();
        tokio::spawn(async move {
            let mut generation = inner.generation.subscribe();
            generation.mark_unchanged();
            tokio::select! {
                _ = serve(tcp, inner.clone()) => {}
                _ = generation.changed() => {}
            }
        });
    }
}

async fn serve(tcp: TcpStream, inner: Arc<Inner>) {
    let _ = tcp.set_nodelay(true);
    if inner.hang_handshake.load(Ordering::SeqCst) {
        // Hold the TCP connection open and say nothing, until dropped by a fault or shutdown.
        let _tcp = tcp;
        std::future::pending::<()>().await;
        return;
    }
    match inner.tls.clone() {
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(tcp).await {
                session(tls, inner).await;
            }
        }
        None => session(tcp, inner).await,
    }
}

async fn session<S>(stream: S, inner: Arc<Inner>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The error type is tungstenite's callback contract, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let record = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                  response| {
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        inner
            .authorizations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(auth);
        match inner.refuse_upgrade.load(Ordering::SeqCst) {
            0 => Ok(response),
            status => {
                let mut refusal =
                    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
                *refusal.status_mut() =
                    tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
                        .unwrap_or(tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED);
                Err(refusal)
            }
        }
    };
    // A small read buffer: tungstenite zero-fills the free part of it before every read, and
    // at the default 128 KiB that was most of a round trip's cost (for raw and im alike).
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, record, Some(config)).await
    else {
        return;
    };
    let session_id = inner.next_session.fetch_add(1, Ordering::SeqCst);
    let seed = format!("seed-{session_id}");
    let challenge = if inner.seed_exact {
        json!({"cmd": "auth1", "msg_id": session_id, "result": {"seed": seed}})
    } else {
        json!({"cmd": "auth1", "msg_id": session_id, "result": {"seed": seed, "dialect": "im"}})
    };
    if ws
        .send(Message::Text(challenge.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    // Handshake: the first frame must be a valid auth2.
    let (user, home) = loop {
        let Some(Ok(msg)) = ws.next().await else {
            return;
        };
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            return;
        };
        if v["cmd"] != "auth2" {
            continue;
        }
        let expected = LiveChat::auth_code(&seed, &inner.key);
        let user = v["userId"].as_u64();
        let home = v["room_id"].as_str().unwrap_or_default().to_owned();
        match user {
            Some(user) if v["authCode"] == expected.as_str() && v["msg_id"] == session_id => {
                break (user, home)
            }
            _ => {
                // The seed has no failure frame: the socket just closes.
                if !inner.seed_exact {
                    let fail = json!({"cmd": "auth_fail", "result": {"reason": "bad auth code"}});
                    let _ = ws.send(Message::Text(fail.to_string().into())).await;
                }
                let _ = ws.close(None).await;
                return;
            }
        }
    };
    let (tx, mut rx) = mpsc::channel(SESSION_QUEUE);
    {
        let mut state = inner.state();
        // A second login takes over: the older session is kicked.
        if let Some(old) = state.users.insert(user, session_id) {
            if let Some(old) = state.sessions.remove(&old) {
                let _ = old.tx.try_send(Message::Text(
                    r#"{"cmd":"conn_close","result":{"reason":"logged in elsewhere"}}"#.into(),
                ));
            }
        }
        // The seed's session is in its home room from the start; im's joins rooms.
        let rooms = match inner.seed_exact {
            true => HashSet::from([home]),
            false => HashSet::new(),
        };
        state.sessions.insert(session_id, Session { rooms, tx });
    }
    let login = inner.logins.fetch_add(1, Ordering::SeqCst);
    if !inner.seed_exact
        && ws
            .send(Message::Text(r#"{"cmd":"auth_ok"}"#.into()))
            .await
            .is_err()
    {
        forget(&inner, session_id, user);
        return;
    }
    if inner.close_after_login.load(Ordering::SeqCst) {
        let _ = ws.close(None).await;
        forget(&inner, session_id, user);
        return;
    }
    if inner.hostile.load(Ordering::SeqCst) && hostile_script(&mut ws, login).await.is_err() {
        forget(&inner, session_id, user);
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(msg) => {
                    let kicked = matches!(&msg, Message::Text(t) if t.as_str().contains("conn_close"));
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                    if kicked {
                        let _ = ws.close(None).await;
                        break;
                    }
                }
                // Removed from the session table: kicked by a newer login, or dropped.
                None => break,
            },
            read = ws.next() => match read {
                Some(Ok(Message::Text(text))) => {
                    if let Some(n) = blast_request(text.as_str()) {
                        if blast(&mut ws, n).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    let replies = handle(&inner, session_id, user, text.as_str());
                    for reply in replies {
                        if ws.feed(Message::Text(reply.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    forget(&inner, session_id, user);
}

fn forget(inner: &Inner, session_id: u64, user: u64) {
    let mut state = inner.state();
    state.sessions.remove(&session_id);
    if state.users.get(&user) == Some(&session_id) {
        state.users.remove(&user);
    }
}

/// One client command; returns the replies to this session.
fn handle(inner: &Inner, session_id: u64, user: u64, text: &str) -> Vec<Value> {
    if inner.seed_exact {
        return handle_seed(inner, session_id, user, text);
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![json!({"cmd": "error", "result": {"reason": "malformed JSON"}})];
    };
    if v["cmd"] == "wd_heartbeat" {
        inner.heartbeats.fetch_add(1, Ordering::Relaxed);
    }
    let mut state = inner.state();
    match v["cmd"].as_str() {
        Some("wd_heartbeat") => {
            if inner.answer_heartbeats.load(Ordering::SeqCst) {
                vec![json!({"cmd": "wd_heartbeat"})]
            } else {
                vec![]
            }
        }
        Some("join") => {
            let room = v["room"].as_str().unwrap_or_default().to_owned();
            if let Some(s) = state.sessions.get_mut(&session_id) {
                s.rooms.insert(room.clone());
            }
            join(inner, &mut state, user, &room, &v["resume"])
        }
        Some("leave") => {
            let room = v["room"].as_str().unwrap_or_default();
            if let Some(s) = state.sessions.get_mut(&session_id) {
                s.rooms.remove(room);
            }
            vec![]
        }
        Some("chat") => {
            let key = match &v["msg_id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let room = v["room"].as_str().unwrap_or_default().to_owned();
            if state.seen.insert((user, key.clone())) {
                let message = v["message"].clone();
                state.delivered.push(Delivered {
                    user,
                    room: room.clone(),
                    key: key.clone(),
                    message: message.clone(),
                });
                let window = inner.resume_window.load(Ordering::SeqCst);
                let log = state.rooms.entry(room.clone()).or_default();
                log.push(user, Some(key), message, window);
                let frame = chat_frame(&room, log.recent.back().expect("just logged"));
                for (id, s) in state.sessions.iter() {
                    if *id != session_id && s.rooms.contains(&room) {
                        let _ = s.tx.try_send(Message::Text(frame.to_string().into()));
                    }
                }
            } else {
                state.duplicates += 1;
            }
            vec![json!({"cmd": "ack", "msg_id": v["msg_id"]})]
        }
        _ => vec![json!({"cmd": "error", "result": {"reason": "unknown command"}})],
    }
}

/// `join` (im's dialect): `joined` with the room's history (`epoch`, last `seq`), then what the
/// joiner should see. With a resume point (`{"epoch","seq"}` of the last message it saw), every
/// kept message after it but its own, and `resumed: false` with a reason when some are no
/// longer kept or the point is from another history; without one, the latest `history`
/// messages, if set.
fn join(inner: &Inner, state: &mut State, user: u64, room: &str, resume: &Value) -> Vec<Value> {
    let log = state.rooms.entry(room.to_owned()).or_default();
    let mut result = json!({"epoch": inner.epoch, "seq": log.last_seq});
    let replay: Vec<&Logged> = match (resume["epoch"].as_str(), resume["seq"].as_u64()) {
        (Some(epoch), Some(after)) if epoch == inner.epoch => {
            let oldest_kept = log.recent.front().map_or(log.last_seq + 1, |m| m.seq);
            if oldest_kept > after + 1 {
                result["resumed"] = json!(false);
                result["reason"] = json!(format!(
                    "{} messages after {after} are no longer kept",
                    oldest_kept - after - 1
                ));
            } else {
                result["resumed"] = json!(true);
            }
            // Its own messages were never sent to it live either.
            log.recent
                .iter()
                .filter(|m| m.seq > after && (m.from != user || m.key.is_none()))
                .collect()
        }
        (Some(_), Some(_)) => {
            result["resumed"] = json!(false);
            result["reason"] = json!("the resume point is from another server's history");
            Vec::new()
        }
        _ => {
            let n = inner.history.load(Ordering::SeqCst);
            log.recent.iter().rev().take(n).rev().collect()
        }
    };
    let mut answer = vec![json!({"cmd": "joined", "room": room, "result": result})];
    answer.extend(replay.into_iter().map(|m| chat_frame(room, m)));
    answer
}

/// One client frame, as a server of exactly the seed's protocol treats it: heartbeats answered,
/// a chat frame relayed to the home room, nothing acknowledged, anything else ignored.
fn handle_seed(inner: &Inner, session_id: u64, user: u64, text: &str) -> Vec<Value> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![];
    };
    if v["cmd"] == "wd_heartbeat" {
        inner.heartbeats.fetch_add(1, Ordering::Relaxed);
    }
    let mut state = inner.state();
    match v["cmd"].as_str() {
        Some("wd_heartbeat") if inner.answer_heartbeats.load(Ordering::SeqCst) => {
            vec![json!({"cmd": "wd_heartbeat"})]
        }
        Some("chat") => {
            let key = match &v["msg_id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !state.seen.insert((user, key.clone())) {
                state.duplicates += 1;
            }
            let Some(home) = state
                .sessions
                .get(&session_id)
                .and_then(|s| s.rooms.iter().next().cloned())
            else {
                return vec![];
            };
            let message = v["message"].clone();
            state.delivered.push(Delivered {
                user,
                room: home.clone(),
                key,
                message: message.clone(),
            });
            let frame = json!({"cmd": "chat", "result": {"from": user, "message": message}});
            for (id, s) in state.sessions.iter() {
                if *id != session_id && s.rooms.contains(&home) {
                    let _ = s.tx.try_send(Message::Text(frame.to_string().into()));
                }
            }
            vec![]
        }
        _ => vec![],
    }
}

/// How many of a room's latest messages the reference server keeps for resuming clients.
pub const DEFAULT_RESUME_WINDOW: usize = 10_000;

/// Chat messages in the hostile script's flood.
pub const HOSTILE_FLOOD: usize = 50_000;
/// Unknown commands in the hostile script.
pub const HOSTILE_UNKNOWN: usize = 10_000;

fn chat(room: &str, message: Value) -> Message {
    let frame = json!({"cmd": "chat", "result": {"room": room, "from": 0, "message": message}});
    Message::Text(frame.to_string().into())
}

/// What a hostile server sends right after a login. The first login gets everything; later ones
/// only `marker-<login>` (the client reconnects after the invalid UTF-8, as RFC 6455 requires).
async fn hostile_script<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    login: usize,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if login > 0 {
        let marker = json!({"text": format!("marker-{login}")});
        return ws.send(chat("hostile", marker)).await;
    }
    ws.feed(Message::Text("{garbage".into())).await?;
    ws.feed(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into()))
        .await?;
    for i in 0..HOSTILE_UNKNOWN {
        ws.feed(Message::Text(format!(r#"{{"cmd":"unknown-{i}"}}"#).into()))
            .await?;
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    ws.feed(Message::Text(deep.into())).await?;
    let huge = format!(r#"{{"cmd":"{}"}}"#, "x".repeat(10 << 20));
    ws.feed(Message::Text(huge.into())).await?;
    ws.flush().await?;
    for n in 0..HOSTILE_FLOOD {
        ws.feed(chat("hostile", json!({ "n": n }))).await?;
        if n % 1_000 == 999 {
            ws.flush().await?;
        }
    }
    ws.feed(chat("hostile", json!({"text": "marker-0"})))
        .await?;
    let invalid = RawFrame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    ws.feed(Message::Frame(invalid)).await?;
    ws.flush().await
}

/// `{"cmd":"join","room":"blast:N"}`: the benchmark's source of traffic, answered with `joined`
/// and then N chat frames of about 64 bytes, as fast as the socket takes them.
fn blast_request(text: &str) -> Option<usize> {
    if !text.contains("blast:") {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    (v["cmd"] == "join")
        .then(|| v["room"].as_str()?.strip_prefix("blast:")?.parse().ok())
        .flatten()
}

async fn blast<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    n: usize,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let joined = json!({"cmd": "joined", "room": format!("blast:{n}")});
    ws.feed(Message::Text(joined.to_string().into())).await?;
    // Encoded once and kept, as the other vendors' blasts are.
    crate::blast::blast(ws, format!("livechat blast:{n}"), n, |i| {
        // {"cmd":"chat","result":{"room":"b","message":{"n":7,"p":"xx…"}}}, padded to 64 bytes.
        let mut frame =
            format!(r#"{{"cmd":"chat","result":{{"room":"b","message":{{"n":{i},"p":""}}}}}}"#);
        let pad = 64usize.saturating_sub(frame.len());
        frame.insert_str(frame.len() - 4, &"x".repeat(pad));
        Message::Text(frame.into())
    })
    .await
}

/// The reference server in a process of its own (the `livechat-server` binary at `exe`), for
/// tests that measure their own process; killed however the test ends.
pub struct ServerProcess {
    child: std::process::Child,
    url: String,
}

impl ServerProcess {
    /// Start `exe` on a free port with `args` (`--key`, `--hostile`) and wait for its URL.
    pub fn start(exe: &str, args: &[&str]) -> io::Result<ServerProcess> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args(["--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::io::BufReader::new(stdout).read_line(&mut first)?;
        // Owned before the URL is looked for, so that the child is killed if it is missing.
        let mut server = ServerProcess {
            child,
            url: String::new(),
        };
        server.url = first
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .ok_or_else(|| io::Error::other(format!("no URL in the server's {first:?}")))?
            .to_owned();
        Ok(server)
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
