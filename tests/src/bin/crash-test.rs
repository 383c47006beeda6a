//! Q5 under fire: a child process sends numbered messages through a client with a durable
//! store and is SIGKILLed at random points, then started again on the same store, until every
//! message is accepted; a receiving client on the other side counts what arrives.
//!
//! ```text
//! cargo run -p im-tests --bin crash-test                      # livechat and MQTT, 10,000 messages, 10 kills each
//! cargo run -p im-tests --bin crash-test -- --vendor mqtt --messages 50000 --kills 30 --seed 7
//! ```
//!
//! - **livechat**: the reference server in im's dialect (acks, and deduplication by the
//!   message's key). Every message must arrive exactly once, in order.
//! - **MQTT**: a stock Mosquitto, QoS 1. Every message must arrive, in order of first arrival;
//!   MQTT 3.1.1 has no idempotency key, so a message that reached the broker just before the
//!   kill, without its PUBACK reaching the client, is published again after the restart and
//!   the subscriber sees it twice. Those duplicates are counted, not hidden.
//!
//! "Accepted" is what `send` returned `Ok` for. A child killed between a `send` and the line
//! that reports it leaves the parent unaware of that one message; the next child sends its
//! number again under the same key, so it is accepted then.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use im_tests::peers::Mosquitto;
use im_tests::LiveChatServer;
use im_tokio::{
    Body, Client, Event, LiveChat, Mqtt, OutgoingMessage, SendError, Store, WritePolicy,
};
use serde_json::{json, Value};

const KEY: &str = "crash-test-key";
const CHANNEL: &str = "crash";
const SENDER: u64 = 1;
const RECEIVER: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Vendor {
    Livechat,
    Mqtt,
    All,
}

#[derive(Parser, Clone)]
#[command(about = "Kill a sending client at random points; count what arrives")]
struct Args {
    #[arg(long, value_enum, default_value = "all")]
    vendor: Vendor,
    /// Messages to send in all.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// SIGKILLs of the sending process.
    #[arg(long, default_value_t = 10)]
    kills: u32,
    /// Seed of the kill points (printed; by default from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Write policy of the store: `every` or `group`.
    #[arg(long, default_value = "group")]
    policy: String,
    /// Send without the store (what the test guards against: the run must fail).
    #[arg(long)]
    no_store: bool,
    /// Internal: run as the sending child.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
    #[arg(long, hide = true)]
    url: Option<String>,
    #[arg(long, hide = true, default_value_t = 0)]
    from: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match &args.child {
        Some(store) => runtime.block_on(child(&args, store)),
        None => runtime.block_on(parent(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-test: {e}");
            ExitCode::FAILURE
        }
    }
}

// ----- the sending child -----

fn policy(name: &str) -> Result<WritePolicy, String> {
    match name {
        "every" => Ok(WritePolicy::EveryMessage),
        "group" => Ok(WritePolicy::default()),
        other => Err(format!("unknown write policy {other:?}: every or group")),
    }
}

/// Send `from..messages`, printing `accepted N` after each `Ok`, then wait until every
/// message (the restored ones too) has its fate, and print `done`.
async fn child(args: &Args, store: &Path) -> Result<(), String> {
    let url = args.url.as_deref().ok_or("--url")?;
    let mut builder = Client::builder().endpoint(url);
    if !args.no_store {
        builder =
            builder.store(Store::open(store, policy(&args.policy)?).map_err(|e| e.to_string())?);
    }
    let builder = builder
        // A kill must not cost a message an ack timeout: the retries outlast any restart.
        .ack_timeout(Duration::from_secs(5))
        .ack_retries(100);
    let builder = match args.vendor {
        Vendor::Livechat => builder.protocol(LiveChat::new(1, SENDER, KEY)),
        _ => builder.protocol(Mqtt::new("crash-sender")),
    };
    let (client, mut events) = builder.connect().map_err(|e| e.to_string())?;
    // Messages without a fate yet: restored ones and accepted ones.
    let open = Arc::new(AtomicU64::new(0));
    let all_sent = Arc::new(AtomicBool::new(false));
    let room = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let (open, all_sent, room) = (open.clone(), all_sent.clone(), room.clone());
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Event::Restored { .. } => {
                        open.fetch_add(1, Ordering::SeqCst);
                        println!("restored");
                    }
                    Event::Acked { .. } | Event::Sent { .. } => {
                        open.fetch_sub(1, Ordering::SeqCst);
                        room.notify_one();
                    }
                    // A lost message is the one thing this test exists to catch: say so and
                    // stop at once, whatever the sending loop is waiting for.
                    Event::Undelivered {
                        message, reason, ..
                    } => {
                        eprintln!(
                            "crash-test child: undelivered ({reason:?}): {:?}",
                            message.body
                        );
                        std::process::exit(2);
                    }
                    Event::Closed { reason } => {
                        eprintln!("crash-test child: closed: {reason:?}");
                        std::process::exit(2);
                    }
                    _ => {}
                }
                if all_sent.load(Ordering::SeqCst) && open.load(Ordering::SeqCst) == 0 {
                    return;
                }
            }
        })
    };
    for n in args.from..args.messages {
        let message = OutgoingMessage::new(CHANNEL, Body::json(&json!({ "n": n })).unwrap())
            .with_key(format!("crash-{n}"));
        loop {
            // Counted open before the send: its fate may be reported before `send` returns.
            open.fetch_add(1, Ordering::SeqCst);
            match client.send(message.clone()) {
                Ok(_) => {
                    println!("accepted {n}");
                    break;
                }
                Err(SendError::OutboxFull { .. }) => {
                    open.fetch_sub(1, Ordering::SeqCst);
                    room.notified().await;
                }
                Err(e) => return Err(format!("send {n}: {e}")),
            }
        }
    }
    // Every fate in: either the reader saw the last one after this (and returns), or it came
    // before (and nothing is open).
    all_sent.store(true, Ordering::SeqCst);
    if open.load(Ordering::SeqCst) == 0 {
        reader.abort();
    } else {
        reader.await.map_err(|e| e.to_string())?;
    }
    println!("done");
    client.close().await;
    Ok(())
}

// ----- the parent -----

/// What a receiving client saw: each message's number, in arrival order. Watched, so that the
/// parent waits for what it needs rather than polling.
#[derive(Default)]
struct Received {
    subscribed: bool,
    numbers: Vec<u64>,
    distinct: BTreeSet<u64>,
}

async fn receiver(
    vendor: Vendor,
    url: &str,
) -> Result<(Client, tokio::sync::watch::Receiver<Received>), String> {
    let builder = Client::builder().endpoint(url);
    let builder = match vendor {
        Vendor::Livechat => builder.protocol(LiveChat::new(1, RECEIVER, KEY)),
        _ => builder.protocol(Mqtt::new("crash-receiver")),
    };
    let (client, mut events) = builder.connect().map_err(|e| e.to_string())?;
    client.subscribe(CHANNEL).map_err(|e| e.to_string())?;
    let (seen, mut received) = tokio::sync::watch::channel(Received::default());
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Event::Subscribed { .. } => seen.send_modify(|r| r.subscribed = true),
                Event::Message(m) => {
                    let value: Value = match serde_json::from_slice(m.body.as_bytes()) {
                        Ok(v) => v,
                        Err(e) => panic!("receiver: a body that is not JSON: {e}"),
                    };
                    if let Some(n) = value["n"].as_u64() {
                        seen.send_modify(|r| {
                            r.numbers.push(n);
                            r.distinct.insert(n);
                        });
                    }
                }
                _ => {}
            }
        }
    });
    let subscribed =
        tokio::time::timeout(Duration::from_secs(10), received.wait_for(|r| r.subscribed))
            .await
            .is_ok_and(|r| r.is_ok());
    if !subscribed {
        return Err("the receiver never subscribed".into());
    }
    Ok((client, received))
}

/// xorshift64*: the kill points, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

struct Run {
    accepted: BTreeSet<u64>,
    kills: u32,
    /// Messages the children got back from the store after a kill.
    restored: usize,
}

fn spawn_child(args: &Args, vendor: Vendor, url: &str, store: &Path, from: u64) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let vendor = match vendor {
        Vendor::Livechat => "livechat",
        _ => "mqtt",
    };
    Command::new(exe)
        .args(["--vendor", vendor, "--url", url, "--policy", &args.policy])
        .args(["--messages", &args.messages.to_string()])
        .args(["--from", &from.to_string()])
        .args(args.no_store.then_some("--no-store"))
        .arg("--child")
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sending child")
}

/// Start children until every message is accepted, killing the first `kills` of them after a
/// random number of accepted messages (0 included: killed while it restores).
fn drive_children(
    args: &Args,
    vendor: Vendor,
    url: &str,
    store: &Path,
    rng: &mut Rng,
) -> Result<Run, String> {
    let mut run = Run {
        accepted: BTreeSet::new(),
        kills: 0,
        restored: 0,
    };
    // Kill points spread over the whole run.
    let spread = 2 * args.messages / u64::from(args.kills + 1);
    loop {
        let from = run.accepted.last().map_or(0, |n| n + 1);
        let mut child = spawn_child(args, vendor, url, store, from);
        let lines = BufReader::new(child.stdout.take().expect("piped"));
        let kill_after = (run.kills < args.kills).then(|| rng.below(spread + 1));
        let mut this_child = 0;
        let mut done = false;
        // Read until the kill point or the end; the child is waited for whatever happened.
        let read: Result<(), String> = (|| {
            if kill_after == Some(0) {
                return child.kill().map_err(|e| e.to_string());
            }
            for line in lines.lines() {
                let line = line.map_err(|e| e.to_string())?;
                if let Some(n) = line.strip_prefix("accepted ") {
                    run.accepted
                        .insert(n.parse().map_err(|_| format!("child said {line:?}"))?);
                    this_child += 1;
                    if kill_after == Some(this_child) {
                        return child.kill().map_err(|e| e.to_string());
                    }
                } else if line == "restored" {
                    run.restored += 1;
                } else if line == "done" {
                    done = true;
                }
            }
            Ok(())
        })();
        if read.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| e.to_string());
        read?;
        let status = status?;
        if kill_after.is_some() {
            run.kills += 1;
            continue;
        }
        if !status.success() || !done {
            return Err(format!(
                "the last child ended with {status} before it was done"
            ));
        }
        return Ok(run);
    }
}

async fn one_vendor(args: &Args, vendor: Vendor, rng: &mut Rng) -> Result<(), String> {
    let mut livechat = None;
    let mut mosquitto = None;
    let url = match vendor {
        Vendor::Livechat => {
            let server = LiveChatServer::start(KEY).map_err(|e| e.to_string())?;
            let url = server.url();
            livechat = Some(server);
            url
        }
        _ => {
            let broker = Mosquitto::start();
            let url = broker.url();
            mosquitto = Some(broker);
            url
        }
    };
    let (receiver_client, mut received) = receiver(vendor, &url).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = dir.path().join("outbox.sqlite3");
    let started = Instant::now();
    let (args2, url2) = (args.clone(), url.clone());
    let mut kills = Rng(rng.below(u64::MAX) | 1);
    let run = tokio::task::spawn_blocking(move || {
        drive_children(&args2, vendor, &url2, &store, &mut kills)
    })
    .await
    .map_err(|e| e.to_string())??;
    // Everything accepted must arrive; give the last ones time to cross.
    let want = run.accepted.len();
    // A timeout is not an error here: what is missing is counted and reported below.
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        received.wait_for(|r| r.distinct.len() >= want),
    )
    .await;
    let (numbers, distinct) = {
        let r = received.borrow();
        (r.numbers.clone(), r.distinct.clone())
    };
    let duplicates = numbers.len() - distinct.len();
    // Order: the first arrival of each number comes after the first arrival of every lower one.
    let mut first = BTreeSet::new();
    let mut order_kept = true;
    let mut highest = None;
    for n in &numbers {
        if first.insert(*n) {
            if highest.is_some_and(|h| *n < h) {
                order_kept = false;
            }
            highest = Some(*n);
        }
    }
    let missing: Vec<u64> = run
        .accepted
        .difference(&distinct)
        .take(10)
        .copied()
        .collect();
    let name = match vendor {
        Vendor::Livechat => "livechat (reference server, acks + dedupe)",
        _ => "mqtt (Mosquitto, QoS 1)",
    };
    let server_side = match &livechat {
        Some(server) => format!(
            ", delivered by the server {} (it dropped {} repeats by key)",
            server.delivered().len(),
            server.duplicates()
        ),
        None => String::new(),
    };
    println!(
        "crash test, {name}: {kills} SIGKILLs, {restored} messages restored from the store, accepted {accepted}, delivered after dedupe {delivered}{server_side}, \
         duplicates seen by the receiving application {duplicates}, order kept: {order}, lost {lost} ({secs:.1} s)",
        kills = run.kills,
        restored = run.restored,
        accepted = run.accepted.len(),
        delivered = distinct.len(),
        order = if order_kept { "yes" } else { "NO" },
        lost = run.accepted.difference(&distinct).count(),
        secs = started.elapsed().as_secs_f64(),
    );
    receiver_client.close().await;
    drop(mosquitto);
    drop(livechat);
    let mut failures = Vec::new();
    if run.accepted.len() as u64 != args.messages {
        failures.push(format!(
            "accepted {} of {}",
            run.accepted.len(),
            args.messages
        ));
    }
    if !missing.is_empty() {
        failures.push(format!("lost, among others: {missing:?}"));
    }
    if !order_kept {
        failures.push("order not kept".into());
    }
    if vendor == Vendor::Livechat && duplicates > 0 {
        failures.push(format!(
            "{duplicates} duplicates reached the receiver past the server's dedupe"
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}: {}", failures.join("; ")))
    }
}

async fn parent(args: &Args) -> Result<(), String> {
    if args.kills == 0 || args.messages == 0 {
        return Err("--kills and --messages must be at least 1".into());
    }
    policy(&args.policy)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!(
        "crash test: {} messages, {} kills, write policy {}, seed {seed}",
        args.messages, args.kills, args.policy
    );
    let mut rng = Rng(seed);
    let vendors: &[Vendor] = match args.vendor {
        Vendor::All => &[Vendor::Livechat, Vendor::Mqtt],
        one => std::slice::from_ref(match one {
            Vendor::Livechat => &Vendor::Livechat,
            _ => &Vendor::Mqtt,
        }),
    };
    for vendor in vendors {
        one_vendor(args, *vendor, &mut rng).await?;
    }
    Ok(())
}
