//! A closed client leaves nothing allocated. Its shared state is the waker its socket is polled
//! with, its driver task and its reader hold it too: a reference cycle among them would keep
//! every closed client's state, read buffer and core alive for the life of the process. Here a
//! hundred clients on each runtime connect, join, send, receive, close and are dropped, and this
//! process's live heap (a counting allocator; the server runs in a process of its own) must come
//! back to where it was.

use std::time::{Duration, Instant};

use im_driver::Runtime;
use im_proto::{Event, LiveChat};
use im_tests::alloc::{live_bytes, Counting};
use im_tests::server::ServerProcess;
use im_tests::wait::until;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLIENTS: usize = 100;

/// What may stay allocated after the clients are gone: the runtimes' own tables grown for a
/// hundred sockets (I/O registrations released on the reactor's next turn, slabs, queues). One
/// leaked client would keep its shared state (~1.4 KB) and its core's allocations, most often its
/// 4 KiB read buffer too: a hundred of them are several times this.
const SLACK: u64 = 32 * 1024;

#[test]
fn closed_clients_leave_nothing_allocated() {
    let server =
        ServerProcess::start(env!("CARGO_BIN_EXE_livechat-server"), &["--key", "k"]).unwrap();
    let url = server.url().to_owned();

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(comes_back::<im_tokio::Tokio>(&url, "im-tokio"));
    async_std::task::block_on(comes_back::<im_async_std::AsyncIo>(&url, "im-async-std"));
}

/// Live heap before and after [`CLIENTS`] clients' whole lives, after one warm-up client (TLS
/// configuration, runtime tables and the like are made once).
async fn comes_back<R: Runtime + Default>(url: &str, runtime: &str) {
    live_and_close::<R>(url, 1).await;
    let before = live_bytes();
    live_and_close::<R>(url, CLIENTS).await;
    // The runtimes free some of a socket's bookkeeping on their next turn: wait for the heap to
    // come back, up to a deadline.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = live_bytes();
    while after > before + SLACK && Instant::now() < deadline {
        async_io::Timer::after(Duration::from_millis(10)).await;
        after = live_bytes();
    }
    println!("{runtime}: live heap {before} B before {CLIENTS} clients, {after} B after them");
    assert!(
        after <= before + SLACK,
        "{runtime}: {} B per closed client stayed allocated ({before} B before, {after} B after)",
        (after - before) / CLIENTS as u64
    );
}

/// `n` clients at once: each connects, joins a room, sends a message and reads its ack (so the
/// reader, a command and the driver task have all polled the socket), then closes; all dropped.
async fn live_and_close<R: Runtime + Default>(url: &str, n: usize) {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let (client, events) = im_driver::Client::<R>::builder()
            .endpoint(url)
            .protocol(LiveChat::new(1, 1_000 + i as u64, "k"))
            .connect()
            .unwrap();
        clients.push((client, events));
    }
    for (i, (client, events)) in clients.iter_mut().enumerate() {
        let room = format!("freed-{i}");
        client.subscribe(&room).unwrap();
        until(events, "joined", |e| matches!(e, Event::Subscribed { .. })).await;
        client.send_text(&room, "hello").unwrap();
        until(events, "ack", |e| matches!(e, Event::Acked { .. })).await;
    }
    for (client, mut events) in clients {
        client.close().await;
        while events.recv().await.is_some() {}
    }
}
