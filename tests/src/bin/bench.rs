//! Benchmarks: im against a hand-written raw loop, in the same run, alternating, as ratios.
//!
//! `cargo run --release -p im-tests --bin bench -- [--quick] [--json]`
//!
//! 1. throughput: livechat-shaped ~64-byte JSON chat messages received and decoded; im-tokio vs
//!    a raw tokio-tungstenite loop that parses the same JSON, im-async-std vs raw
//!    async-tungstenite.
//!    Then the same for MQTT, Socket.IO and NATS: im with that vendor's protocol against a raw
//!    loop of that vendor (`im_tests::raw`), both reading pre-encoded frames from an in-process
//!    source (`im_tests::blast`), so the client is the bottleneck.
//! 2. latency: sequential send → ack round trips through the reference server; p50 and p99.
//! 3. idle memory: idle connections in a child process, RSS growth per connection, im vs raw
//!    with the same WebSocket buffer settings; tasks per connection.
//! 4. herd: real clients on the reference server, which restarts; reconnect arrivals per 100 ms,
//!    the busiest 100 ms over the even rate across the spread the policy intends (`j·b_0`), for
//!    the default policy and for jitter 0; plotted to docs/img/herd.svg.
//! 5. core cost: nanoseconds per inbound message through im-proto alone (no network).
//!
//! The machine is noisy: every figure is the median of several alternating rounds; the
//! throughput ratio is the median of per-round ratios, each round measuring both back to back.
//!
//! For profiling under `valgrind --tool=callgrind` (instruction counts are stable where times
//! are not): `--only throughput|throughput-async-std|rtt im|raw N` runs one measurement of one kind (on a one-thread
//! runtime, as the full run does), `--core-only` the im-proto loop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use im_proto::{
    Client as Core, Config, ConnId, Frame, HeartbeatMode, LiveChat, Output, ReconnectPolicy,
    TransportEvent,
};
use im_tests::blast::{BlastServer, BlastVendor};
use im_tests::wait::rss_bytes;
use im_tests::LiveChatServer;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use tungstenite::Message;

const KEY: &str = "bench-key";

/// Counts live heap bytes, so idle memory can be split into what is allocated and what the
/// allocator keeps around it (RSS).
#[global_allocator]
static ALLOCATOR: im_tests::alloc::Counting = im_tests::alloc::Counting;

#[derive(Deserialize)]
struct Body {
    n: u64,
}

#[derive(Deserialize)]
struct Inbound<'a> {
    cmd: &'a str,
    #[serde(borrow)]
    result: Option<InboundResult<'a>>,
}

#[derive(Deserialize)]
struct InboundResult<'a> {
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    im_driver::ws_config(im_proto::Limits::default().max_frame_bytes)
}

// ---------------------------------------------------------------------------------------------
// Raw baselines: the loop a user would write by hand, livechat login included.
// ---------------------------------------------------------------------------------------------

/// Log in by hand (auth1 → auth2 → auth_ok) on any tungstenite stream.
async fn raw_login<S>(ws: &mut S, user: u64)
where
    S: im_tests::raw::WebSocket,
{
    im_tests::raw::livechat_login(ws, user, KEY).await
}

/// Receive `n` blasted chat messages, parsing each frame and its body: the raw loop.
async fn raw_receive<S>(ws: &mut S, n: usize) -> Duration
where
    S: im_tests::raw::WebSocket,
{
    let start = Instant::now();
    let join = json!({"cmd": "join", "room": format!("blast:{n}")});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    let mut got = 0;
    while got < n {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            continue;
        };
        let v: Inbound<'_> = serde_json::from_str(t.as_str()).unwrap();
        if v.cmd == "chat" {
            let raw = v.result.and_then(|r| r.message).expect("message");
            let body: Body = serde_json::from_str(raw.get()).unwrap();
            assert_eq!(body.n, got as u64);
            got += 1;
        }
    }
    start.elapsed()
}

async fn raw_tokio_throughput(url: &str, n: usize) -> Duration {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .unwrap();
    raw_login(&mut ws, 900).await;
    let t = raw_receive(&mut ws, n).await;
    let _ = ws.close(None).await;
    t
}

async fn raw_async_throughput(url: &str, n: usize) -> Duration {
    let (mut ws, _) = async_tungstenite::smol::connect_async_with_config(url, Some(ws_config()))
        .await
        .unwrap();
    raw_login(&mut ws, 901).await;
    let t = raw_receive(&mut ws, n).await;
    let _ = ws.close(None).await;
    t
}

// ---------------------------------------------------------------------------------------------
// im: the same work through the client.
// ---------------------------------------------------------------------------------------------

/// An im client logged in as `user`, once its connection is ready.
/// Settings for clients of `url`: one `Arc` shared by every client given it.
fn settings(url: &str) -> Arc<im_proto::Config> {
    Arc::new(im_proto::Config::builder().endpoint(url).build().unwrap())
}

async fn im_connected<R: im_driver::Runtime + Default>(
    config: Arc<im_proto::Config>,
    user: u64,
) -> (im_driver::Client<R>, im_driver::Events) {
    im_connected_on(im_driver::ClientBuilder::default(), config, user).await
}

/// A client from `builder` (its runtime), logged in and connected.
async fn im_connected_on<R: im_driver::Runtime>(
    builder: im_driver::ClientBuilder<R>,
    config: Arc<im_proto::Config>,
    user: u64,
) -> (im_driver::Client<R>, im_driver::Events) {
    let (client, mut events) = builder
        .config(config)
        .protocol(LiveChat::new(1, user, KEY))
        .seed(user)
        .connect()
        .unwrap();
    until_connected(&mut events).await;
    (client, events)
}

async fn im_throughput<R: im_driver::Runtime + Default>(
    url: &str,
    n: usize,
    user: u64,
) -> Duration {
    let (client, events) = im_connected::<R>(settings(url), user).await;
    receive_blast(client, events, &format!("blast:{n}"), n).await
}

/// Subscribe to `channel`, a blast of `n` numbered messages, and decode every one, checking
/// the order; how long from the subscribe to the last one. The client is closed after.
async fn receive_blast<R: im_driver::Runtime>(
    client: im_driver::Client<R>,
    mut events: im_driver::Events,
    channel: &str,
    n: usize,
) -> Duration {
    let start = Instant::now();
    client.subscribe(channel).unwrap();
    let mut got = 0;
    while got < n {
        if let Some(im_proto::Event::Message(m)) = events.recv().await {
            let body: Body = m.body.decode().unwrap();
            assert_eq!(body.n, got as u64);
            got += 1;
        }
    }
    let t = start.elapsed();
    client.close().await;
    t
}

/// Read `events` until the client is connected.
async fn until_connected(events: &mut im_driver::Events) {
    while let Some(e) = events.recv().await {
        if matches!(e, im_proto::Event::Connected { .. }) {
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every vendor: im with that vendor's protocol against the raw loop of that vendor.
// ---------------------------------------------------------------------------------------------

async fn raw_vendor_tokio(url: &str, vendor: BlastVendor, n: usize) -> Duration {
    let request = im_tests::raw::request(url, vendor);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
            .await
            .unwrap();
    let t = im_tests::raw::receive(&mut ws, vendor, n).await;
    let _ = ws.close(None).await;
    t
}

async fn raw_vendor_async(url: &str, vendor: BlastVendor, n: usize) -> Duration {
    let request = im_tests::raw::request(url, vendor);
    let (mut ws, _) =
        async_tungstenite::smol::connect_async_with_config(request, Some(ws_config()))
            .await
            .unwrap();
    let t = im_tests::raw::receive(&mut ws, vendor, n).await;
    let _ = ws.close(None).await;
    t
}

/// An im client of `vendor` on `url`, connected. (Socket.IO's room events carry the blast's
/// `subscribe`; nothing else sends them.)
async fn im_vendor_connected<R: im_driver::Runtime + Default>(
    url: &str,
    vendor: BlastVendor,
) -> (im_driver::Client<R>, im_driver::Events) {
    let builder = im_driver::ClientBuilder::<R>::default().endpoint(url);
    let builder = match vendor {
        BlastVendor::Mqtt => builder.protocol(im_proto::Mqtt::new("bench-im")),
        BlastVendor::SocketIo => {
            builder.protocol(im_proto::SocketIo::new().room_events("subscribe", "unsubscribe"))
        }
        BlastVendor::Nats => builder.protocol(im_proto::Nats::new("bench-im")),
    };
    let (client, mut events) = builder.connect().unwrap();
    until_connected(&mut events).await;
    (client, events)
}

async fn im_vendor<R: im_driver::Runtime + Default>(
    url: &str,
    vendor: BlastVendor,
    n: usize,
) -> Duration {
    let (client, events) = im_vendor_connected::<R>(url, vendor).await;
    receive_blast(client, events, &im_tests::raw::channel(vendor, n), n).await
}

/// Sequential acked round trips of `vendor` through im-tokio: the time from each send to its
/// `Acked` (MQTT QoS 1 and its PUBACK, a Socket.IO emit with an ack id and its answer).
async fn im_vendor_rtts(url: &str, vendor: BlastVendor, n: usize) -> Vec<Duration> {
    let (client, events) = im_vendor_connected::<im_tokio::Tokio>(url, vendor).await;
    acked_round_trips(client, events, n, |i| {
        let body = im_proto::Json::parse(im_tests::blast::body(i)).unwrap();
        im_proto::OutgoingMessage::new("echo", im_proto::Body::Json(body))
            .with_delivery(im_proto::Delivery::AtLeastOnce)
    })
    .await
}

/// Send `message(i)` for `i` in `0..n`, one at a time, each timed from the send to its `Acked`;
/// then close the client.
async fn acked_round_trips<R: im_driver::Runtime>(
    client: im_driver::Client<R>,
    mut events: im_driver::Events,
    n: usize,
    message: impl Fn(usize) -> im_proto::OutgoingMessage,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let id = client.send(message(i)).unwrap();
        while let Some(e) = events.recv().await {
            if e == (im_proto::Event::Acked { id }) {
                break;
            }
        }
        out.push(start.elapsed());
    }
    client.close().await;
    out
}

async fn raw_vendor_rtts(url: &str, vendor: BlastVendor, n: usize) -> Vec<Duration> {
    let request = im_tests::raw::request(url, vendor);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
            .await
            .unwrap();
    let out = im_tests::raw::round_trips(&mut ws, vendor, n).await;
    let _ = ws.close(None).await;
    out.expect("a vendor with acks")
}

/// The round trip's p50, im over raw, for a vendor that acknowledges messages: `rounds`
/// alternating runs of `n` each side on one thread (as livechat's), every sample pooled.
fn vendor_rtt_ratio(
    rt1: &tokio::runtime::Runtime,
    vendor: BlastVendor,
    rounds: usize,
    n: usize,
) -> (f64, Duration, Duration) {
    let source = BlastServer::start(vendor).unwrap();
    let url = source.url();
    let (mut im, mut raw) = (vec![], vec![]);
    for r in 0..rounds {
        let (u1, u2) = (url.clone(), url.clone());
        let im_run = || spawned(rt1, async move { im_vendor_rtts(&u1, vendor, n).await });
        let raw_run = || spawned(rt1, async move { raw_vendor_rtts(&u2, vendor, n).await });
        if r % 2 == 0 {
            raw.extend(raw_run());
            im.extend(im_run());
        } else {
            im.extend(im_run());
            raw.extend(raw_run());
        }
    }
    let (im_p50, raw_p50) = (percentile(&mut im, 0.5), percentile(&mut raw, 0.5));
    (
        im_p50.as_secs_f64() / raw_p50.as_secs_f64(),
        im_p50,
        raw_p50,
    )
}

/// livechat's throughput, im against raw on both runtimes, from `rounds` paired rounds of
/// `messages` each.
struct LiveChatThroughput {
    /// Medians of the per-round ratios, tokio and async-std.
    ratio_t: f64,
    ratio_a: f64,
    /// Medians of each side's messages per second.
    raw_t: f64,
    im_t: f64,
    raw_a: f64,
    im_a: f64,
}

/// Every round measures raw and im back to back (which goes first alternates) and yields one
/// ratio; the figure is the median of those paired ratios. The machine's speed drifts by a
/// factor of two between seconds here, so a ratio of medians taken over the whole run mostly
/// measured when each side happened to run.
fn livechat_throughput(
    rt: &tokio::runtime::Runtime,
    url: &str,
    rounds: u64,
    messages: usize,
) -> LiveChatThroughput {
    let url = url.to_owned();
    let (mut raw_t, mut im_t, mut raw_a, mut im_a) = (vec![], vec![], vec![], vec![]);
    let (mut ratio_t, mut ratio_a) = (vec![], vec![]);
    // Unmeasured: the server encodes the blast on its first request and only writes it after.
    spawned(rt, {
        let u = url.clone();
        async move { raw_tokio_throughput(&u, messages).await }
    });
    for r in 0..rounds {
        let mps = |d: Duration| messages as f64 / d.as_secs_f64();
        let raw_tokio = || {
            let u = url.clone();
            mps(spawned(rt, async move {
                raw_tokio_throughput(&u, messages).await
            }))
        };
        let im_tokio = || {
            let u = url.clone();
            mps(spawned(rt, async move {
                im_throughput::<im_tokio::Tokio>(&u, messages, 1_000 + r).await
            }))
        };
        let raw_async = || {
            let u = url.clone();
            mps(async_std::task::block_on(async_std::task::spawn(
                async move { raw_async_throughput(&u, messages).await },
            )))
        };
        let im_async = || {
            let u = url.clone();
            mps(async_std::task::block_on(async_std::task::spawn(
                async move { im_throughput::<im_async_std::AsyncIo>(&u, messages, 2_000 + r).await },
            )))
        };
        let ((rt_, it), (ra, ia)) = if r % 2 == 0 {
            ((raw_tokio(), im_tokio()), (raw_async(), im_async()))
        } else {
            let it = im_tokio();
            let ia = im_async();
            ((raw_tokio(), it), (raw_async(), ia))
        };
        ratio_t.push(it / rt_);
        ratio_a.push(ia / ra);
        raw_t.push(rt_);
        im_t.push(it);
        raw_a.push(ra);
        im_a.push(ia);
    }
    let (ratio_t, ratio_a) = (median(&mut ratio_t), median(&mut ratio_a));
    let (raw_t, im_t, raw_a, im_a) = (
        median(&mut raw_t),
        median(&mut im_t),
        median(&mut raw_a),
        median(&mut im_a),
    );
    LiveChatThroughput {
        ratio_t,
        ratio_a,
        raw_t,
        im_t,
        raw_a,
        im_a,
    }
}

/// The vendors with a round trip (an ack) the bench measures, and their keys in `--json`.
const RTT_VENDORS: [(BlastVendor, &str); 2] = [
    (BlastVendor::Mqtt, "mqtt"),
    (BlastVendor::SocketIo, "socketio"),
];

/// Throughput ratios of one vendor, im over raw: tokio, async-std; each the median of
/// `rounds` paired rounds (which side goes first alternating), as for livechat.
fn vendor_ratios(
    rt: &tokio::runtime::Runtime,
    vendor: BlastVendor,
    rounds: usize,
    n: usize,
) -> (f64, f64) {
    let source = BlastServer::start(vendor).unwrap();
    let url = source.url();
    let mps = |d: Duration| n as f64 / d.as_secs_f64();
    let (mut tokio_ratios, mut async_ratios) = (vec![], vec![]);
    // Unmeasured: the source encodes each side's blast on its first request (both sides ask
    // for the same frames, so one of each prepares them), and every later one only writes.
    spawned(rt, {
        let u = url.clone();
        async move {
            raw_vendor_tokio(&u, vendor, n).await;
            im_vendor::<im_tokio::Tokio>(&u, vendor, n).await
        }
    });
    for r in 0..rounds {
        let raw_t = || {
            let u = url.clone();
            mps(spawned(
                rt,
                async move { raw_vendor_tokio(&u, vendor, n).await },
            ))
        };
        let im_t = || {
            let u = url.clone();
            mps(spawned(rt, async move {
                im_vendor::<im_tokio::Tokio>(&u, vendor, n).await
            }))
        };
        let raw_a = || {
            let u = url.clone();
            mps(async_std::task::block_on(async_std::task::spawn(
                async move { raw_vendor_async(&u, vendor, n).await },
            )))
        };
        let im_a = || {
            let u = url.clone();
            mps(async_std::task::block_on(async_std::task::spawn(
                async move { im_vendor::<im_async_std::AsyncIo>(&u, vendor, n).await },
            )))
        };
        if r % 2 == 0 {
            let (raw, im) = (raw_t(), im_t());
            tokio_ratios.push(im / raw);
            let (raw, im) = (raw_a(), im_a());
            async_ratios.push(im / raw);
        } else {
            let im = im_t();
            tokio_ratios.push(im / raw_t());
            let im = im_a();
            async_ratios.push(im / raw_a());
        }
    }
    (median(&mut tokio_ratios), median(&mut async_ratios))
}

// ---------------------------------------------------------------------------------------------
// Q5: what the durable outbox costs a sender.
// ---------------------------------------------------------------------------------------------

/// Send `n` acked messages as fast as the client takes them and wait for the last ack: in
/// memory (`policy` None) or through a store in `dir` with that write policy.
async fn durable_send(
    url: &str,
    n: usize,
    policy: Option<im_tokio::WritePolicy>,
    dir: &std::path::Path,
    user: u64,
) -> Duration {
    let config = im_proto::Config::builder()
        .endpoint(url)
        .limits(
            im_proto::Limits::default()
                .outbox_messages(n + 1)
                .outbox_bytes(64 << 20),
        )
        .build()
        .unwrap();
    let mut builder = im_driver::ClientBuilder::<im_tokio::Tokio>::default();
    if let Some(policy) = policy {
        let path = dir.join(format!("outbox-{user}.sqlite3"));
        builder = builder.store(im_tokio::Store::open(&path, policy).unwrap());
    }
    let (client, mut events) = im_connected_on(builder, Arc::new(config), user).await;
    // The acks are read as they come, and at most WINDOW messages wait for theirs, as a
    // well-behaved sender does (one that sends 20,000 in a loop without ever yielding starves
    // its own reader: README, noticed).
    const WINDOW: usize = 500;
    let window = Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let permits = window.clone();
    let reader = tokio::spawn(async move {
        let mut acked = 0;
        while acked < n {
            match events.recv().await {
                Some(im_proto::Event::Acked { .. }) => {
                    acked += 1;
                    permits.add_permits(1);
                }
                Some(im_proto::Event::Undelivered { reason, .. }) => {
                    panic!("undelivered: {reason:?}")
                }
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    });
    let start = Instant::now();
    for i in 0..n {
        window.acquire().await.unwrap().forget();
        client.send_json("lobby", &json!({ "n": i })).unwrap();
    }
    reader.await.unwrap();
    let t = start.elapsed();
    client.close().await;
    t
}

/// Alternating rounds of the three ways to send, medians in messages per second; and the
/// resident memory an idle client with a store adds, over 50 of them.
fn durable_figures(rounds: usize, n: usize) -> Value {
    let server = LiveChatServer::start(KEY).unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let rt = two_workers();
    let kinds: [(&str, Option<im_tokio::WritePolicy>); 3] = [
        ("memory", None),
        ("store_group", Some(im_tokio::WritePolicy::default())),
        ("store_every", Some(im_tokio::WritePolicy::EveryMessage)),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut user = 1_000;
    for _ in 0..rounds {
        for (k, (_, policy)) in kinds.iter().enumerate() {
            user += 1;
            let t = rt.block_on(durable_send(&url, n, *policy, dir.path(), user));
            rates[k].push(n as f64 / t.as_secs_f64());
        }
    }
    let mut out = serde_json::Map::new();
    for (k, (name, _)) in kinds.iter().enumerate() {
        out.insert(
            format!("durable_msgs_per_sec_{name}"),
            json!(median(&mut rates[k])),
        );
    }
    // Idle clients with a store each, against as many without: what a store adds per client.
    let idle = |with_store: bool| -> f64 {
        let count = 50;
        let before = rss_bytes();
        let clients: Vec<_> = (0..count)
            .map(|i| {
                let mut builder = im_tokio::Client::builder()
                    .endpoint(url.as_str())
                    .protocol(LiveChat::new(1, 50_000 + i, KEY));
                if with_store {
                    let path = dir.path().join(format!("idle-{with_store}-{i}.sqlite3"));
                    builder = builder.store(
                        im_tokio::Store::open(path, im_tokio::WritePolicy::default()).unwrap(),
                    );
                }
                rt.block_on(async { builder.connect().unwrap() })
            })
            .collect();
        let after = rss_bytes();
        drop(clients);
        after.saturating_sub(before) as f64 / count as f64
    };
    let without = idle(false);
    let with = idle(true);
    out.insert(
        "durable_idle_rss_added_per_client".into(),
        json!(with - without),
    );
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// A fleet on im-async-std: many clients at once, on async-std's executor (every core) or, as
// im-async-std ran them before, all on one thread of their own.
// ---------------------------------------------------------------------------------------------

/// Child mode: `clients` im-async-std clients sharing one `Arc` of settings connect (after one
/// warm-up client), then each receives `each` messages at once. Prints one JSON line: the live
/// heap and RSS per idle connected client, the aggregate receive rate, and the cores this
/// process (the clients alone: the server is the parent) kept busy meanwhile.
fn fleet_child(url: &str, clients: usize, each: usize, one_thread: bool) {
    let runtime = if one_thread {
        // How im-async-std ran every client before: one executor on one thread.
        let executor = Arc::new(async_executor::Executor::new());
        let runs = executor.clone();
        std::thread::spawn(move || async_io::block_on(runs.run(std::future::pending::<()>())));
        im_async_std::AsyncIo::with_executor(executor)
    } else {
        im_async_std::AsyncIo::default()
    };
    let config = settings(url);
    let connect = |user: u64| {
        let builder = im_driver::ClientBuilder::with_runtime(runtime.clone());
        async_std::task::block_on(im_connected_on(builder, config.clone(), user))
    };
    let warm = connect(49_999);
    let (before, heap_before) = (rss_bytes(), im_tests::alloc::live_bytes());
    let fleet: Vec<_> = (0..clients).map(|i| connect(50_000 + i as u64)).collect();
    let rss = rss_bytes().saturating_sub(before) as f64 / clients as f64;
    let heap = im_tests::alloc::live_bytes().saturating_sub(heap_before) as f64 / clients as f64;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (start, cpu) = (Instant::now(), im_tests::wait::cpu_time());
    for (client, mut events) in fleet {
        let done = done_tx.clone();
        // The readers run where the clients do.
        let reader = async move {
            client.subscribe(&format!("blast:{each}")).unwrap();
            let mut got = 0;
            while got < each {
                if let Some(im_proto::Event::Message(_)) = events.recv().await {
                    got += 1;
                }
            }
            client.close().await;
            done.send(()).unwrap();
        };
        im_driver::Runtime::spawn(&runtime, reader).unwrap();
    }
    for _ in 0..clients {
        done_rx.recv().unwrap();
    }
    let (wall, busy) = (start.elapsed(), im_tests::wait::cpu_time() - cpu);
    println!(
        "{}",
        json!({"rss_per_client": rss, "heap_per_client": heap,
               "rate": (clients * each) as f64 / wall.as_secs_f64(),
               "cores": busy.as_secs_f64() / wall.as_secs_f64()})
    );
    std::mem::forget(warm);
}

/// im-async-std with 1 and 1,000 clients, on async-std's executor against all on one thread:
/// `rounds` child processes of each, alternating; medians.
fn fleet_async_std(url: &str, rounds: usize, total: usize) -> Value {
    let mut out = serde_json::Map::new();
    for clients in [1usize, 1_000] {
        let mut runs: [Vec<Value>; 2] = [vec![], vec![]];
        for r in 0..rounds {
            for k in 0..2 {
                let one_thread = (k + r) % 2 == 0;
                let exe = std::env::current_exe().unwrap();
                let output = Command::new(exe)
                    .args(["--fleet-child", url, &clients.to_string()])
                    .arg((total / clients).to_string())
                    .arg(if one_thread {
                        "one-thread"
                    } else {
                        "async-std"
                    })
                    .output()
                    .unwrap();
                assert!(output.status.success(), "fleet child failed");
                let line = String::from_utf8(output.stdout).unwrap();
                runs[usize::from(!one_thread)].push(serde_json::from_str(line.trim()).unwrap());
            }
        }
        for (runs, on) in runs.iter().zip(["one_thread", "async_std"]) {
            let median_of = |key: &str| {
                median(
                    &mut runs
                        .iter()
                        .map(|v| v[key].as_f64().unwrap())
                        .collect::<Vec<_>>(),
                )
            };
            let figures = json!({
                "rss_per_client": median_of("rss_per_client"),
                "heap_per_client": median_of("heap_per_client"),
                "msgs_per_sec": median_of("rate"),
                "cores": median_of("cores"),
            });
            out.insert(format!("fleet_{clients}_{on}"), figures);
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Latency: send → ack round trips.
// ---------------------------------------------------------------------------------------------

async fn raw_rtts(url: &str, rounds: usize, tag: &str) -> Vec<Duration> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .unwrap();
    raw_login(&mut ws, 910).await;
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        let chat = json!({"cmd": "chat", "msg_id": format!("{tag}-{i}"), "room": "echo", "message": {"n": i}});
        ws.send(Message::Text(chat.to_string().into()))
            .await
            .unwrap();
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                continue;
            };
            let v: Inbound<'_> = serde_json::from_str(t.as_str()).unwrap();
            if v.cmd == "ack" {
                break;
            }
        }
        out.push(start.elapsed());
    }
    let _ = ws.close(None).await;
    out
}

async fn im_rtts(url: &str, rounds: usize, user: u64) -> Vec<Duration> {
    let (client, events) = im_connected::<im_tokio::Tokio>(settings(url), user).await;
    acked_round_trips(client, events, rounds, |i| {
        im_proto::OutgoingMessage::json("echo", &json!({ "n": i })).unwrap()
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Idle memory, in a child process so that only the clients are measured.
// ---------------------------------------------------------------------------------------------

/// Idle connections held open by the child, of one kind.
#[derive(Default)]
struct Idle {
    im: Vec<(im_driver::Client<im_tokio::Tokio>, im_driver::Events)>,
    /// The settings the `im` clients share (the application holds them, as it would).
    shared: Option<Arc<im_proto::Config>>,
    raw: Vec<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
}

impl Idle {
    /// Open connection `i` of `kind` and keep it: `im`, the clients sharing one `Arc` of
    /// settings; `im-own-url`, each client with settings of its own (and a URL of its own, a
    /// query the server ignores); or `raw`.
    async fn open(&mut self, kind: &str, url: &str, i: usize) {
        let user = 100_000 + i as u64;
        if kind == "im" {
            let shared = self.shared.get_or_insert_with(|| settings(url)).clone();
            self.im
                .push(im_connected::<im_tokio::Tokio>(shared, user).await);
        } else if kind == "im-own-url" {
            let own = settings(&format!("{url}?client={i}"));
            self.im
                .push(im_connected::<im_tokio::Tokio>(own, user).await);
        } else {
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
                    .await
                    .unwrap();
            raw_login(&mut ws, user).await;
            self.raw.push(ws);
        }
    }
}

/// Child mode: open `n` idle connections (`im` or `raw`), print one JSON line, exit.
fn idle_child(kind: &str, url: &str, n: usize) {
    let rt = two_workers();
    rt.block_on(async {
        // Warm the allocator, TLS config and runtime with one connection of the same kind.
        let mut keep = Idle::default();
        keep.open(kind, url, 0).await;
        let tasks_before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let before = rss_bytes();
        let heap_before = im_tests::alloc::live_bytes();
        for i in 1..=n {
            keep.open(kind, url, i).await;
        }
        let after = rss_bytes();
        let heap = im_tests::alloc::live_bytes().saturating_sub(heap_before);
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            - tasks_before;
        println!(
            "{}",
            json!({"bytes_per_conn": (after.saturating_sub(before)) as f64 / n as f64,
                   "heap_per_conn": heap as f64 / n as f64,
                   "tasks_per_conn": tasks as f64 / n as f64})
        );
        // Not dropped: the process ends here, and closing 2,000 clients would only add a peak
        // to heap profiles of this child.
        std::mem::forget(keep);
    });
}

fn run_idle_child(kind: &str, url: &str, n: usize) -> (f64, f64, f64) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--idle-child", kind, url, &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.wait();
    let v: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("child said {line:?}: {e}"));
    (
        v["bytes_per_conn"].as_f64().unwrap(),
        v["tasks_per_conn"].as_f64().unwrap(),
        v["heap_per_conn"].as_f64().unwrap(),
    )
}

// ---------------------------------------------------------------------------------------------
// Herd: real clients, a real restart.
// ---------------------------------------------------------------------------------------------

use im_tests::herd::{buckets, intended_spread, peak, peak_ratio, spread, WINDOW};

/// Arrival offsets (since the restart) of each client's reconnect, the server down for
/// `outage` in between.
async fn herd(clients: usize, jitter: f64, outage: Duration) -> Vec<Duration> {
    let mut server = LiveChatServer::start(KEY).unwrap();
    let policy = ReconnectPolicy::default().jitter(jitter);
    let mut all = Vec::with_capacity(clients);
    for i in 0..clients {
        let (c, mut e) = im_tokio::Client::builder()
            .endpoint(server.url())
            .protocol(LiveChat::new(1, 200_000 + i as u64, KEY))
            .reconnect(policy.clone())
            .heartbeat(HeartbeatMode::Off)
            .seed(0xbe9c_0000 + i as u64)
            .connect()
            .unwrap();
        while !matches!(e.recv().await, Some(im_proto::Event::Connected { .. })) {}
        all.push((c, e));
    }
    // Every client healthy (R2), then the restart.
    tokio::time::sleep(policy.stable_after).await;
    server.stop();
    // The outage the fleet rides out: connects are refused meanwhile.
    tokio::time::sleep(outage).await;
    let accepted_before = server.accepted();
    let restart = Instant::now();
    server.resume().unwrap();
    let deadline = restart + Duration::from_secs(60);
    while server.logins() < 2 * clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.logins(), 2 * clients, "every client came back");
    let mut arrivals: Vec<Duration> = server.accept_times()[accepted_before..]
        .iter()
        .map(|t| t.saturating_duration_since(restart))
        .collect();
    arrivals.sort();
    for (c, _) in &all {
        c.close().await;
    }
    arrivals
}

/// A small SVG: connects per 100 ms after the restart, default policy vs jitter 0.
fn herd_svg(jittered: &[Duration], rigid: &[Duration], clients: usize) -> String {
    let until = (*jittered.last().unwrap()).max(*rigid.last().unwrap()) + WINDOW;
    let (a, b) = (
        buckets(jittered, until, WINDOW),
        buckets(rigid, until, WINDOW),
    );
    let ymax = a.iter().chain(&b).copied().max().unwrap_or(1).max(1) as f64;
    let (w, h, left, bottom) = (720.0, 320.0, 60.0, 40.0);
    let x = |i: usize| left + i as f64 * (w - left - 20.0) / a.len() as f64;
    let y = |v: usize| h - bottom - v as f64 * (h - bottom - 30.0) / ymax;
    let path = |v: &[usize]| {
        let mut d = format!("M{:.1},{:.1}", x(0), y(0));
        for (i, c) in v.iter().enumerate() {
            d += &format!(" L{:.1},{:.1} L{:.1},{:.1}", x(i), y(*c), x(i + 1), y(*c));
        }
        d
    };
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="18" font-size="14">{clients} clients reconnecting after a server restart: connects per 100 ms</text>
<line x1="{left}" y1="{y0}" x2="{xr}" y2="{y0}" stroke="black"/>
<line x1="{left}" y1="{y0}" x2="{left}" y2="30" stroke="black"/>
<text x="{xm}" y="{yl}" text-anchor="middle">seconds after the restart</text>
<text x="14" y="{ym}" transform="rotate(-90 14 {ym})" text-anchor="middle">connects / 100 ms</text>
"##,
        y0 = h - bottom,
        xr = w - 20.0,
        xm = (w + left) / 2.0,
        yl = h - 8.0,
        ym = (h - bottom) / 2.0,
    );
    let secs = until.as_secs_f64().ceil() as usize;
    for s in 0..=secs {
        let i = s * 10;
        svg += &format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{s}</text>"#,
            x(i),
            h - bottom + 15.0
        );
    }
    for frac in [0.5, 1.0] {
        let v = (ymax * frac).round() as usize;
        svg += &format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            left - 4.0,
            y(v) + 4.0
        );
    }
    svg += &format!(
        r##"<path d="{}" fill="none" stroke="#d62728" stroke-width="1.5"/>
<path d="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<text x="{lx}" y="48" fill="#d62728">jitter 0: peak {} in a sliding 100 ms window</text>
<text x="{lx}" y="64" fill="#1f77b4">default policy (jitter 0.5, drawn per outage): peak {}</text>
</svg>
"##,
        path(&b),
        path(&a),
        peak(rigid),
        peak(jittered),
        lx = left + 10.0,
    );
    svg
}

// ---------------------------------------------------------------------------------------------
// Core cost: im-proto alone.
// ---------------------------------------------------------------------------------------------

fn core_ns_per_message(n: usize) -> f64 {
    let now = Instant::now();
    let config = Config::builder()
        .endpoint("ws://bench/ws")
        .heartbeat(HeartbeatMode::Off)
        .seed(1)
        .build()
        .unwrap();
    let mut core = Core::new(config, Box::new(LiveChat::new(1, 1, KEY)), now).unwrap();
    core.connect(now);
    let conn = ConnId::from_raw(0);
    let drain = |core: &mut Core| {
        let mut k = 0usize;
        loop {
            match core.poll_output() {
                Output::Timeout(_) => break,
                o => k += usize::from(matches!(o, Output::Event(_))),
            }
        }
        k
    };
    drain(&mut core);
    core.handle_transport(now, conn, TransportEvent::Opened);
    for f in [
        r#"{"cmd":"auth1","msg_id":1,"result":{"seed":"s"}}"#,
        r#"{"cmd":"auth_ok"}"#,
    ] {
        core.handle_transport(now, conn, TransportEvent::Frame(Frame::Text(f.into())));
    }
    drain(&mut core);
    // A frame in a shared buffer, as the driver hands them over (tungstenite splits frames off
    // its read buffer): each input is a reference, not a copy.
    let frame = im_proto::Text::from(
        r#"{"cmd":"chat","result":{"room":"b","message":{"n":1234,"p":"xxxxx"}}}"#,
    );
    let frame = frame.slice_ref(frame.as_str());
    let start = Instant::now();
    let mut events = 0;
    // In rounds of 64 frames, then a drain, as the driver feeds a busy connection (every frame
    // already buffered, under one lock). One frame per round adds the queues' allocation to
    // every frame (~600 instructions under callgrind: what a quiet connection pays per message).
    for round in 0..n.div_ceil(64) {
        for _ in 0..64.min(n - round * 64) {
            core.handle_transport(now, conn, TransportEvent::Frame(Frame::Text(frame.clone())));
        }
        events += drain(&mut core);
    }
    let t = start.elapsed();
    assert_eq!(events, n);
    t.as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------------------------

/// A tokio runtime on one thread: how throughput and round trips are measured (see the full
/// run's comments).
fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A tokio runtime with two workers, for fleets of clients.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The vendors measured against their own raw loops, and their keys in `--json`.
const VENDORS: [(BlastVendor, &str); 3] = [
    (BlastVendor::Mqtt, "mqtt"),
    (BlastVendor::SocketIo, "socketio"),
    (BlastVendor::Nats, "nats"),
];

/// Run `f` in a spawned task, as application code runs (raw and im alike), and wait for it.
fn spawned<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async { tokio::spawn(f).await.expect("the measured task") })
}

const USAGE: &str = "usage: bench [--quick] [--json]
       bench --only throughput|throughput-async-std|rtt im|raw N
       bench --only idle im|raw|im-own-url N   (one child of the idle memory measurement)
       bench --core-only
       bench --fleet-async-std [ROUNDS]   (1 and 1,000 im-async-std clients: idle memory, throughput, cores)
       bench --herd-outages [CLIENTS]   (2,000 real clients; outages of 0 to 30 s, ~3 minutes)
       bench --herd [RUNS]   (the full run's herd figure, RUNS times: how much it moves)
       bench --vendors [ROUNDS] [MESSAGES]   (MQTT, Socket.IO and NATS throughput against their raw loops; MQTT and Socket.IO round trips)
       bench --only-vendor mqtt|socketio|nats im|raw N   (one run of one side, for callgrind)
       bench --livechat [ROUNDS] [N]   (the full run's livechat throughput section alone)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--core-only") {
        // For instruction-level profiling (`valgrind --tool=callgrind`): the core loop alone.
        println!("core: {:.0} ns per message", core_ns_per_message(200_000));
        return;
    }
    if args.first().map(String::as_str) == Some("--herd-outages") {
        // The herd after outages of every length: 2,000 real clients on the reference server,
        // down for the outage, then back; the busiest 100 ms over the even rate across the
        // arrivals' own spread (as the simulation in im-proto/tests/herd.rs measures it).
        let clients = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2_000);
        let rt = two_workers();
        let jitter = ReconnectPolicy::default().jitter;
        for secs in [0u64, 1, 2, 3, 5, 7, 10, 20, 30] {
            let arrivals = rt.block_on(herd(clients, jitter, Duration::from_secs(secs)));
            let ratio = peak_ratio(&arrivals, spread(&arrivals));
            println!(
                "herd after a {secs:>2} s outage ({clients} clients, real sockets): busiest 100 ms is {ratio:.2}x the even rate over {:.2?} (peak {})",
                spread(&arrivals),
                peak(&arrivals)
            );
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--livechat") {
        // The full run's livechat throughput section alone.
        let rounds: u64 = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(9);
        let messages = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        let server = LiveChatServer::start(KEY).unwrap();
        let t = livechat_throughput(&one_thread(), &server.url(), rounds, messages);
        println!(
            "throughput, livechat ({messages} msgs, {rounds} paired rounds, medians of ratios): im-tokio / raw tokio-tungstenite {:.3}; im-async-std / raw async-tungstenite {:.3}",
            t.ratio_t, t.ratio_a
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--vendors") {
        // The per-vendor throughput section of the full run alone.
        let rounds = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(9);
        let messages = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        let rt = one_thread();
        for (vendor, key) in VENDORS {
            let (t, a) = vendor_ratios(&rt, vendor, rounds, messages);
            println!(
                "throughput, {key} ({messages} msgs, {rounds} paired rounds, medians of ratios): im-tokio / raw tokio-tungstenite {t:.3}; im-async-std / raw async-tungstenite {a:.3}"
            );
        }
        for (vendor, key) in RTT_VENDORS {
            let (ratio, im, raw) = vendor_rtt_ratio(&rt, vendor, rounds, 2_000);
            println!(
                "round trip, {key} (send → ack, {rounds} alternating runs of 2000): p50 im {:.1} µs, raw {:.1} µs, ratio {ratio:.3}",
                im.as_secs_f64() * 1e6,
                raw.as_secs_f64() * 1e6,
            );
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--only-vendor") {
        // For instruction-level profiling: one run of one side for one vendor, tokio.
        let vendor = match args.get(1).map(String::as_str) {
            Some("mqtt") => BlastVendor::Mqtt,
            Some("socketio") => BlastVendor::SocketIo,
            Some("nats") => BlastVendor::Nats,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        };
        let n = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        let source = BlastServer::start(vendor).unwrap();
        let url = source.url();
        let rt = one_thread();
        let took = match args.get(2).map(String::as_str) {
            Some("im") => spawned(&rt, async move {
                im_vendor::<im_tokio::Tokio>(&url, vendor, n).await
            }),
            _ => spawned(&rt, async move { raw_vendor_tokio(&url, vendor, n).await }),
        };
        println!("{n} messages in {took:?}");
        return;
    }
    if args.first().map(String::as_str) == Some("--herd") {
        // The full run's herd figure alone, again and again: it must not move with one late
        // client (see `intended_spread`).
        let runs = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5);
        let rt = two_workers();
        let policy = ReconnectPolicy::default();
        for run in 1..=runs {
            let arrivals = rt.block_on(herd(2_000, policy.jitter, Duration::ZERO));
            let (reference, outside) = intended_spread(&policy, &arrivals);
            println!(
                "herd run {run} (2000 clients, restart): busiest 100 ms {} = {:.2}x the even rate over the intended {reference:.2?} ({outside} outside it; measured spread {:.2?}, which would give {:.2}x)",
                peak(&arrivals),
                peak_ratio(&arrivals, reference),
                spread(&arrivals),
                peak_ratio(&arrivals, spread(&arrivals)),
            );
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--only") {
        // For instruction-level profiling (`valgrind --tool=callgrind`): one measurement of one
        // kind, `--only throughput|rtt im|raw N`, so two totals differ by what im adds; and
        // `--only idle im|raw|im-own-url N`, one child of the idle measurement.
        let (what, kind, n) = (args[1].clone(), args[2].clone(), args[3].parse().unwrap());
        let server = LiveChatServer::start(KEY).unwrap();
        let url = server.url();
        if what == "idle" {
            let (bytes, _, heap) = run_idle_child(&kind, &url, n);
            println!(
                "idle {kind}: {n} connections, RSS {bytes:.0} B and live heap {heap:.0} B each"
            );
            return;
        }
        let rt1 = one_thread();
        let t = match (what.as_str(), kind.as_str()) {
            ("throughput", "im") => spawned(&rt1, async move {
                im_throughput::<im_tokio::Tokio>(&url, n, 1).await
            }),
            ("throughput", _) => spawned(&rt1, async move { raw_tokio_throughput(&url, n).await }),
            ("throughput-async-std", "im") => {
                async_std::task::block_on(async_std::task::spawn(async move {
                    im_throughput::<im_async_std::AsyncIo>(&url, n, 1).await
                }))
            }
            ("throughput-async-std", _) => {
                async_std::task::block_on(async_std::task::spawn(async move {
                    raw_async_throughput(&url, n).await
                }))
            }
            ("rtt", "im") => spawned(&rt1, async move { im_rtts(&url, n, 1).await })
                .into_iter()
                .sum(),
            ("rtt", _) => spawned(&rt1, async move { raw_rtts(&url, n, "raw").await })
                .into_iter()
                .sum(),
            _ => panic!("--only throughput|throughput-async-std|rtt|idle im|raw N"),
        };
        println!("{what} {kind}: {n} in {t:?}");
        return;
    }
    if args.first().map(String::as_str) == Some("--fleet-async-std") {
        // im-async-std with 1 and 1,000 clients: on async-std's executor (every core) against
        // all clients on one thread (how im-async-std ran them before).
        let rounds = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(3);
        let server = LiveChatServer::start(KEY).unwrap();
        let figures = fleet_async_std(&server.url(), rounds, 200_000);
        for (key, f) in figures.as_object().unwrap() {
            println!(
                "{key:<24} idle {:>6.0} B/client (heap {:>6.0} B), {:.2} M msg/s received, {:.2} cores busy",
                f["rss_per_client"].as_f64().unwrap(),
                f["heap_per_client"].as_f64().unwrap(),
                f["msgs_per_sec"].as_f64().unwrap() / 1e6,
                f["cores"].as_f64().unwrap()
            );
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--durable") {
        // Q5: sending 20,000 acked messages in memory and through a store with each write
        // policy, alternating, medians; and the memory a store adds to an idle client.
        let rounds = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5);
        let figures = durable_figures(rounds, 20_000);
        let rate = |k: &str| figures[k].as_f64().unwrap();
        let memory = rate("durable_msgs_per_sec_memory");
        for (name, label) in [
            ("memory", "in memory"),
            ("store_group", "store, WritePolicy::Group (64 msgs / 10 ms)"),
            ("store_every", "store, WritePolicy::EveryMessage"),
        ] {
            let r = rate(&format!("durable_msgs_per_sec_{name}"));
            println!(
                "durable: {label:<46} {:>9.0} msg/s acked ({:.2}x in memory), median of {rounds}",
                r,
                r / memory
            );
        }
        println!(
            "durable: an idle client with a store adds {:.0} KB of resident memory (50 clients)",
            figures["durable_idle_rss_added_per_client"]
                .as_f64()
                .unwrap()
                / 1024.0
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--fleet-child") {
        let (url, clients, each) = (&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
        fleet_child(url, clients, each, args[4] == "one-thread");
        return;
    }
    if args.first().map(String::as_str) == Some("--idle-child") {
        idle_child(&args[1], &args[2], args[3].parse().unwrap());
        return;
    }
    // The full run takes a while and rewrites docs/img/herd.svg: anything but its two flags
    // (a typo, `--help`) gets the usage instead.
    if let Some(unknown) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--quick" | "--json"))
    {
        eprintln!("{USAGE}");
        std::process::exit(if unknown == "--help" || unknown == "-h" {
            0
        } else {
            2
        });
    }
    let quick = args.iter().any(|a| a == "--quick");
    let as_json = args.iter().any(|a| a == "--json");
    let say = |s: String| {
        if !as_json {
            println!("{s}");
        } else {
            eprintln!("{s}");
        }
    };
    // Round trips are measured in alternating chunks of `rtt_chunk`.
    let (rounds, messages, rtt_chunks, rtt_chunk, idle_conns, herd_clients, core_msgs) = if quick {
        (5, 20_000, 15, 200, 500, 500, 200_000)
    } else {
        (9, 100_000, 25, 400, 2_000, 2_000, 1_000_000)
    };

    let server = LiveChatServer::start(KEY).unwrap();
    let url = server.url();
    // Throughput on a single-threaded runtime, raw and im alike: with two workers beside the
    // server's thread on this 2-core machine, which thread parks where moved single rounds by
    // ±20 % (ratios of 0.75 to 1.06 in three quick runs of one build); one thread measures the
    // client's own cost. (Round trips below use one thread for the same reason.)
    let rt = one_thread();

    // 1. throughput (see `livechat_throughput`).
    let t = livechat_throughput(&rt, &url, rounds, messages);
    let (ratio_t, ratio_a, raw_t, im_t, raw_a, im_a) =
        (t.ratio_t, t.ratio_a, t.raw_t, t.im_t, t.raw_a, t.im_a);
    say(format!(
        "throughput ({messages} msgs, {rounds} paired rounds, medians): im-tokio {im_t:.0}/s, raw tokio-tungstenite {raw_t:.0}/s, ratio {ratio_t:.3}; im-async-std {im_a:.0}/s, raw async-tungstenite {raw_a:.0}/s, ratio {ratio_a:.3}"
    ));

    // The other vendors, each against its own raw loop on the same source.
    let mut vendor_figures = serde_json::Map::new();
    for (vendor, key) in VENDORS {
        let (tokio_ratio, async_ratio) = vendor_ratios(&rt, vendor, rounds as usize, messages);
        say(format!(
            "throughput, {key} ({messages} msgs, {rounds} paired rounds, medians of ratios): im-tokio / raw tokio-tungstenite {tokio_ratio:.3}; im-async-std / raw async-tungstenite {async_ratio:.3}"
        ));
        vendor_figures.insert(format!("throughput_ratio_{key}"), json!(tokio_ratio));
        vendor_figures.insert(
            format!("throughput_ratio_{key}_async_std"),
            json!(async_ratio),
        );
    }
    for (vendor, key) in RTT_VENDORS {
        let n = if quick { 1_000 } else { 3_000 };
        let (ratio, im, raw) = vendor_rtt_ratio(&rt, vendor, rounds as usize, n);
        say(format!(
            "round trip, {key} (send → ack, {rounds} alternating runs of {n}): p50 im {:.1} µs, raw {:.1} µs, ratio {ratio:.3}",
            im.as_secs_f64() * 1e6,
            raw.as_secs_f64() * 1e6,
        ));
        vendor_figures.insert(format!("rtt_p50_ratio_{key}"), json!(ratio));
    }

    // 2. latency, alternating.
    let (mut raw_l, mut im_l) = (vec![], vec![]);
    // Round trips on a single-threaded runtime, for raw and im alike: with two workers the
    // figure flips between ~13 and ~75 µs run to run, depending on which threads park; one
    // thread measures the client's own cost instead of the scheduler's luck.
    let rt1 = one_thread();
    // In spawned tasks, as application code runs: a `block_on` future is not a task, and
    // waking it from the driver's task cost im a scheduler pass (an extra epoll_wait) per round
    // trip that a spawned reader does not pay. Short alternating chunks, which of the two goes
    // first alternating too, so drift in the machine's speed lands on both sides.
    for r in 0..rtt_chunks {
        let n = rtt_chunk;
        let raw = || {
            let (u, tag) = (url.clone(), format!("raw{r}"));
            spawned(&rt1, async move { raw_rtts(&u, n, &tag).await })
        };
        let im = || {
            let u = url.clone();
            spawned(&rt1, async move { im_rtts(&u, n, 3_000 + r).await })
        };
        if r % 2 == 0 {
            raw_l.extend(raw());
            im_l.extend(im());
        } else {
            im_l.extend(im());
            raw_l.extend(raw());
        }
    }
    let (raw_p50, raw_p99) = (percentile(&mut raw_l, 0.5), percentile(&mut raw_l, 0.99));
    let (im_p50, im_p99) = (percentile(&mut im_l, 0.5), percentile(&mut im_l, 0.99));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    say(format!(
        "latency ({} round trips each): im p50 {:.1} µs p99 {:.1} µs; raw p50 {:.1} µs p99 {:.1} µs; ratios {:.3} / {:.3}",
        raw_l.len(),
        us(im_p50),
        us(im_p99),
        us(raw_p50),
        us(raw_p99),
        us(im_p50) / us(raw_p50),
        us(im_p99) / us(raw_p99)
    ));

    // 3. idle memory, in child processes, alternating.
    let idle_rounds = if quick { 1 } else { 3 };
    let (mut im_b, mut raw_b, mut im_h, mut raw_h, mut own_b, mut own_h, mut tasks) =
        (vec![], vec![], vec![], vec![], vec![], vec![], 0.0);
    for _ in 0..idle_rounds {
        let (b, t, h) = run_idle_child("im", &url, idle_conns);
        im_b.push(b);
        im_h.push(h);
        tasks = t;
        let (b, _, h) = run_idle_child("raw", &url, idle_conns);
        raw_b.push(b);
        raw_h.push(h);
        let (b, _, h) = run_idle_child("im-own-url", &url, idle_conns);
        own_b.push(b);
        own_h.push(h);
    }
    let (im_b, raw_b, im_h, raw_h, own_b, own_h) = (
        median(&mut im_b),
        median(&mut raw_b),
        median(&mut im_h),
        median(&mut raw_h),
        median(&mut own_b),
        median(&mut own_h),
    );
    say(format!(
        "idle ({idle_conns} connections): RSS growth im {im_b:.0} B/conn, raw {raw_b:.0} B/conn; live heap im {im_h:.0} B/conn, raw {raw_h:.0} B/conn; {tasks:.2} tasks/conn; \
         im with a URL per client (no settings shared) {own_b:.0} B/conn, heap {own_h:.0}"
    ));

    // 4. herd.
    let jittered = rt.block_on(herd(
        herd_clients,
        ReconnectPolicy::default().jitter,
        Duration::ZERO,
    ));
    let rigid = rt.block_on(herd(herd_clients, 0.0, Duration::ZERO));
    let policy = ReconnectPolicy::default();
    let (reference, late) = intended_spread(&policy, &jittered);
    let (herd_ratio, herd_rigid) = (
        peak_ratio(&jittered, reference),
        peak_ratio(&rigid, reference),
    );
    say(format!(
        "herd ({herd_clients} clients, restart): default policy peak {} per 100 ms = {herd_ratio:.2}x the even rate over its intended {reference:.2?} spread (measured spread {:.2?}, {late} outside the intended window); jitter 0 peak {} (spread {:.2?}) = {herd_rigid:.2}x the same even rate",
        peak(&jittered),
        spread(&jittered),
        peak(&rigid),
        spread(&rigid),
    ));
    let svg = herd_svg(&jittered, &rigid, herd_clients);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/herd.svg");
    if !quick {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, svg).unwrap();
        say("herd plot written to docs/img/herd.svg".to_owned());
    }

    // 5. core cost.
    let mut core = (0..5)
        .map(|_| core_ns_per_message(core_msgs))
        .collect::<Vec<_>>();
    let core = median(&mut core);
    say(format!(
        "core: {core:.0} ns per inbound chat message through im-proto (median of 5)"
    ));

    if as_json {
        let mut figures = json!({
                "quick": quick,
                "messages": messages,
                "throughput_ratio": ratio_t,
                "throughput_im_msgs_per_s": im_t,
                "throughput_raw_msgs_per_s": raw_t,
                "throughput_ratio_async_std": ratio_a,
                "throughput_im_async_std_msgs_per_s": im_a,
                "throughput_raw_async_tungstenite_msgs_per_s": raw_a,
                "rtt_p50_ratio": us(im_p50) / us(raw_p50),
                "rtt_p99_ratio": us(im_p99) / us(raw_p99),
                "rtt_p50_us": us(im_p50),
                "rtt_p99_us": us(im_p99),
                "rtt_p50_us_raw": us(raw_p50),
                "rtt_p99_us_raw": us(raw_p99),
                "idle_connections": idle_conns,
                "idle_bytes_per_conn": im_b,
                "idle_bytes_per_conn_raw": raw_b,
                "idle_tasks_per_conn": tasks,
                "idle_heap_bytes_per_conn": im_h,
                "idle_heap_bytes_per_conn_raw": raw_h,
                "idle_bytes_per_conn_own_url": own_b,
                "idle_heap_bytes_per_conn_own_url": own_h,
                "herd_clients": herd_clients,
                "herd_peak_ratio": herd_ratio,
                "herd_reference_spread_ms": reference.as_millis() as u64,
                "herd_outside_intended_window": late,
                "herd_peak_ratio_no_jitter": herd_rigid,
                "herd_peak": peak(&jittered),
                "herd_peak_no_jitter": peak(&rigid),
                "core_ns_per_msg": core,
        });
        if let Value::Object(all) = &mut figures {
            all.extend(vendor_figures);
        }
        println!("{figures}");
    }
}
