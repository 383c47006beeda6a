//! A user's own executor fits the `Runtime` trait: a runtime that carries a handle to a tokio
//! runtime of the application's choosing (not the one the caller runs in), with a timer of its
//! own, drives a client through connect, subscribe, send and ack against the reference server.
//! The driver task must run there: the runtime counts what it spawned and the timers it made and
//! re-armed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use im_driver::{AsyncTimer, ClientBuilder, Runtime, SpawnError};
use im_proto::{Event, HeartbeatMode, LiveChat};
use im_tests::wait::until;
use im_tests::LiveChatServer;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

/// An application's runtime: a handle, and counters to prove it was used.
#[derive(Clone, Debug)]
struct Mine {
    handle: tokio::runtime::Handle,
    spawned: Arc<AtomicUsize>,
    timers: Arc<AtomicUsize>,
    resets: Arc<AtomicUsize>,
    /// Turns of the tasks it spawned (the driver's).
    turns: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Timer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    resets: Arc<AtomicUsize>,
}

/// A spawned task, its turns counted.
struct Counted<F> {
    future: Pin<Box<F>>,
    turns: Arc<AtomicUsize>,
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.turns.fetch_add(1, Ordering::Relaxed);
        self.future.as_mut().poll(cx)
    }
}

impl AsyncTimer for Timer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.resets.fetch_add(1, Ordering::Relaxed);
        self.sleep.as_mut().reset(deadline.into());
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

impl Runtime for Mine {
    type Ws = <im_tokio::Tokio as Runtime>::Ws;
    type Hints = im_driver::NoHints;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) -> Result<(), SpawnError> {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.handle.spawn(Counted {
            future: Box::pin(future),
            turns: self.turns.clone(),
        });
        Ok(())
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.timers.fetch_add(1, Ordering::Relaxed);
        // The timer belongs to the handle's runtime, wherever it is made.
        let _inside = self.handle.enter();
        Box::pin(Timer {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            resets: self.resets.clone(),
        })
    }

    fn hints(&self) -> Self::Hints {
        im_driver::NoHints
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        request: Request,
        tls: Option<Arc<rustls::ClientConfig>>,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, WsError>> + Send + 'static + use<> {
        // Opening the socket is tokio's: the same as im-tokio's.
        im_tokio::Tokio::default().connect(request, tls, config)
    }
}

/// The application's runtime (one worker), and a `Mine` on its handle.
fn mine() -> (tokio::runtime::Runtime, Mine) {
    let theirs = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mine = Mine {
        handle: theirs.handle().clone(),
        spawned: Arc::default(),
        timers: Arc::default(),
        resets: Arc::default(),
        turns: Arc::default(),
    };
    (theirs, mine)
}

#[test]
fn a_runtime_carrying_its_own_handle_drives_a_client() {
    let server = LiveChatServer::start("k").unwrap();
    // Kept to the end: the client runs there.
    let (_theirs, mine) = mine();
    // The application waits on a runtime of its own, which has no timer or I/O driver: only
    // the handle's runtime can run the client.
    let caller = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    caller.block_on(async {
        let (client, mut events) = ClientBuilder::with_runtime(mine.clone())
            .endpoint(server.url())
            .protocol(LiveChat::new(1, 1, "k"))
            // A heartbeat due sooner than the connect deadline the timer was made for: re-armed.
            .heartbeat(HeartbeatMode::ClientDriven {
                interval: Duration::from_millis(50),
                timeout: Duration::from_secs(5),
            })
            .connect()
            .unwrap();
        until(&mut events, "Connected", |e| {
            matches!(e, Event::Connected { .. })
        })
        .await;
        until(&mut events, "an answered heartbeat", |e| {
            matches!(e, Event::Heartbeat { rtt: Some(_) })
        })
        .await;
        client.subscribe("lobby").unwrap();
        let id = client.send_text("lobby", "hi").unwrap();
        until(
            &mut events,
            "Acked",
            |e| matches!(e, Event::Acked { id: i } if *i == id),
        )
        .await;
        client.close().await;
    });
    assert_eq!(
        mine.spawned.load(Ordering::Relaxed),
        1,
        "one driver task, on the handle"
    );
    assert_eq!(
        mine.timers.load(Ordering::Relaxed),
        1,
        "one timer per client, re-armed rather than re-made"
    );
    assert!(
        mine.resets.load(Ordering::Relaxed) > 0,
        "the timer was re-armed"
    );
}

/// An idle client's driver is not woken for nothing between heartbeats. The heartbeat arms the
/// dead-link deadline (H2) from the last pong, which falls before the next heartbeat whenever
/// the window is under two intervals (the default's 25 s + 10 s is); the new pong moves it past
/// the next heartbeat, and a timer left at the earlier deadline woke the driver at it to find
/// nothing due. Two turns a heartbeat are left here: the timer's, and the one each event costs
/// this test's reader (`until` drops its `recv`, handing the socket back to the driver). The
/// early wake-up made it four.
#[test]
fn an_idle_client_is_not_woken_between_heartbeats() {
    let server = LiveChatServer::start("k").unwrap();
    let (theirs, mine) = mine();
    let (turns, beats) = theirs.block_on(async {
        let (client, mut events) = ClientBuilder::with_runtime(mine.clone())
            .endpoint(server.url())
            .protocol(LiveChat::new(1, 1, "k"))
            // The default's proportions (25 s and 10 s), fifty times faster.
            .heartbeat(HeartbeatMode::ClientDriven {
                interval: Duration::from_millis(500),
                timeout: Duration::from_millis(200),
            })
            // R2's one-off deadline well past the heartbeats counted.
            .reconnect(im_proto::ReconnectPolicy::default().stable_after(Duration::from_secs(60)))
            .connect()
            .unwrap();
        let answered = |e: &Event| matches!(e, Event::Heartbeat { rtt: Some(_) });
        until(&mut events, "an answered heartbeat", answered).await;
        let before = mine.turns.load(Ordering::Relaxed);
        let beats = 4;
        for _ in 0..beats {
            until(&mut events, "an answered heartbeat", answered).await;
        }
        let turns = mine.turns.load(Ordering::Relaxed) - before;
        client.close().await;
        (turns, beats)
    });
    assert!(
        turns <= 2 * beats + 2,
        "the driver took {turns} turns for {beats} heartbeats: woken between them for nothing"
    );
}
