//! What the browser tests need from outside the browser: the reference livechat server, a
//! fault proxy in front of it, and Mosquitto, started here on free loopback ports, and a
//! control socket through which a test in the page asks for their addresses and breaks them
//! (stop, resume, blackhole, kill, restart). A page cannot start processes; it can open a
//! WebSocket.
//!
//! The control protocol is one text frame per command, answered by one text frame: JSON, or
//! `error: …`. Each test starts peers of its own, so that tests running at the same time in
//! the page (wasm-bindgen-test runs async tests concurrently) never break each other's.
//!
//! | command | answer |
//! |---|---|
//! | `livechat start` | `{"id", "url", "proxied"}`: a new server, and a fault proxy in front of it |
//! | `livechat ID stop` / `livechat ID resume` | `"ok"` once done |
//! | `livechat ID delivered ROOM` | the messages the server accepted for `ROOM`, in order |
//! | `livechat ID accepted` | how many WebSocket sessions it accepted so far |
//! | `proxy ID blackhole` / `proxy ID pass` | `"ok"` (the proxy of livechat server `ID`) |
//! | `mosquitto start` | `{"id", "url"}`: a new broker |
//! | `mosquitto ID kill` / `mosquitto ID restart` | `"ok"` once done |

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::proxy::Mode;
use crate::{FaultProxy, LiveChatServer, Mosquitto};

/// The key the browser tests log in to the livechat server with.
pub const KEY: &str = "browser-key";

/// The peers the tests started, by id; stopped when the control is dropped.
#[derive(Default)]
struct Peers {
    livechat: Vec<(LiveChatServer, FaultProxy)>,
    mosquitto: Vec<Mosquitto>,
}

/// The control socket; dropping it stops every peer started through it.
pub struct Control {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    peers: Arc<Mutex<Peers>>,
}

impl Control {
    /// Listen for the tests on a free loopback port.
    pub fn start() -> io::Result<Control> {
        let peers = Arc::new(Mutex::new(Peers::default()));
        let listener = crate::runtime::listen(([127, 0, 0, 1], 0).into())?;
        let addr = listener.local_addr()?;
        let shared = peers.clone();
        let accept = crate::runtime::get().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Ok(Control {
            addr,
            accept,
            peers,
        })
    }

    /// The control socket's URL, for the tests in the page.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.accept.abort();
        let mut peers = lock(&self.peers);
        peers.livechat.clear();
        peers.mosquitto.clear();
    }
}

fn lock(peers: &Mutex<Peers>) -> std::sync::MutexGuard<'_, Peers> {
    peers.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(stream: TcpStream, peers: Arc<Mutex<Peers>>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(command) = message else {
            continue;
        };
        let command = command.as_str().to_owned();
        let peers = peers.clone();
        // Stopping and restarting peers blocks until done: off the runtime's workers.
        let answer = tokio::task::spawn_blocking(move || run(&command, &peers))
            .await
            .unwrap_or_else(|e| format!("error: {e}"));
        if ws.send(Message::Text(answer.into())).await.is_err() {
            return;
        }
    }
}

fn run(command: &str, peers: &Mutex<Peers>) -> String {
    match execute(command, peers) {
        Ok(answer) => answer.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn execute(command: &str, peers: &Mutex<Peers>) -> Result<Value, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let ok = Ok(json!("ok"));
    let id = |word: &str| -> Result<usize, String> {
        word.parse().map_err(|_| format!("not a peer id: {word:?}"))
    };
    match words.as_slice() {
        ["livechat", "start"] => {
            // Started outside the lock: other tests' commands go on meanwhile.
            let server = LiveChatServer::start(KEY).map_err(|e| e.to_string())?;
            let proxy = FaultProxy::start(([127, 0, 0, 1], server.port()).into())
                .map_err(|e| e.to_string())?;
            let answer = json!({"url": server.url(), "proxied": proxy.url("/ws")});
            let mut peers = lock(peers);
            peers.livechat.push((server, proxy));
            let mut answer = answer;
            answer["id"] = json!(peers.livechat.len() - 1);
            Ok(answer)
        }
        ["mosquitto", "start"] => {
            let broker = Mosquitto::start();
            let url = broker.url();
            let mut peers = lock(peers);
            peers.mosquitto.push(broker);
            Ok(json!({"id": peers.mosquitto.len() - 1, "url": url}))
        }
        ["livechat", n, what @ ..] => {
            let mut peers = lock(peers);
            let (server, _) = peers
                .livechat
                .get_mut(id(n)?)
                .ok_or("no such livechat server")?;
            match what {
                ["stop"] => {
                    server.stop();
                    ok
                }
                ["resume"] => server
                    .resume()
                    .map(|()| json!("ok"))
                    .map_err(|e| e.to_string()),
                ["delivered", room] => Ok(server
                    .delivered()
                    .into_iter()
                    .filter(|d| d.room == *room)
                    .map(|d| json!({"user": d.user, "key": d.key, "message": d.message}))
                    .collect()),
                ["accepted"] => Ok(json!(server.accepted())),
                _ => Err(format!("unknown command {command:?}")),
            }
        }
        ["proxy", n, what] => {
            let peers = lock(peers);
            let (_, proxy) = peers.livechat.get(id(n)?).ok_or("no such proxy")?;
            match *what {
                "blackhole" => proxy.set_mode(Mode::Blackhole),
                "pass" => {
                    proxy.set_mode(Mode::Pass);
                    proxy.reset_all();
                }
                _ => return Err(format!("unknown command {command:?}")),
            }
            ok
        }
        ["mosquitto", n, what] => {
            let mut peers = lock(peers);
            let broker = peers.mosquitto.get_mut(id(n)?).ok_or("no such broker")?;
            match *what {
                "kill" => broker.kill(),
                "restart" => broker.restart(),
                _ => return Err(format!("unknown command {command:?}")),
            }
            ok
        }
        _ => Err(format!("unknown command {command:?}")),
    }
}
