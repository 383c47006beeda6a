//! A TCP fault proxy between a client and a server, on loopback: pass, blackhole (a half-open
//! link: both sides stay connected, nothing arrives), added delay, and reset.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Read and discard in both directions; never close.
    Blackhole,
    /// Forward each chunk after this delay.
    Delay(Duration),
}

pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to reset every proxied connection.
    resets: watch::Sender<u64>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on a free loopback port, forwarding to `target`. Runs on [`crate::runtime`].
    pub fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = crate::runtime::listen(([127, 0, 0, 1], 0).into())?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Pass);
        let (resets, _) = watch::channel(0);
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let accept = crate::runtime::get().spawn(accept_loop(
            listener,
            target,
            mode.subscribe(),
            resets.subscribe(),
            tasks.clone(),
        ));
        Ok(FaultProxy {
            addr,
            mode,
            resets,
            tasks,
            accept,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Reset every proxied connection (RST to both sides).
    pub fn reset_all(&self) {
        self.resets.send_modify(|g| *g += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    mode: watch::Receiver<Mode>,
    resets: watch::Receiver<u64>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mode = mode.clone();
        let mut resets = resets.clone();
        let task = tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            resets.mark_unchanged();
            let reset = {
                let (cr, cw) = client.split();
                let (sr, sw) = server.split();
                tokio::select! {
                    _ = pump(cr, sw, mode.clone()) => false,
                    _ = pump(sr, cw, mode) => false,
                    _ = resets.changed() => true,
                }
            };
            if reset {
                // Linger 0: closing now sends RST to both sides instead of FIN.
                #[allow(deprecated)]
                {
                    let _ = client.set_linger(Some(Duration::ZERO));
                    let _ = server.set_linger(Some(Duration::ZERO));
                }
            }
        });
        let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *mode.borrow();
        match current {
            Mode::Pass => {}
            Mode::Blackhole => continue,
            Mode::Delay(d) => tokio::time::sleep(d).await,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
