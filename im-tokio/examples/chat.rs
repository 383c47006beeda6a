//! The im chat demo on tokio.
//!
//! `cargo run -p im-tokio --example chat` starts an embedded livechat server, lets two users
//! chat, restarts the server (reconnect, resubscribe, queued messages delivered in order), then
//! logs one user in elsewhere (kicked, never reconnects). Ends by itself.
//!
//! `cargo run -p im-tokio --example chat -- --url ws://HOST:PORT/ws --room N --user N --key K`
//! connects to a livechat server and sends each stdin line. `--json` prints one JSON object per
//! event. `--help` lists the flags.

use std::time::Duration;

use im_tests::demo::{Args, Narrator};
use im_tests::LiveChatServer;
use im_tokio::{Client, Event, LiveChat};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const KEY: &str = "demo-key";
const STEP: Duration = Duration::from_secs(10);

/// A demo user: the client, and the events it got (printed as they arrive).
struct User {
    client: Client,
    seen: mpsc::Receiver<Event>,
}

impl User {
    fn start(
        narrator: &'static Narrator,
        name: &'static str,
        builder: im_tokio::ClientBuilder,
    ) -> User {
        let (client, mut events) = builder.connect().expect("valid demo configuration");
        let (tx, seen) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                narrator.event(name, &event);
                let _ = tx.try_send(event);
            }
        });
        User { client, seen }
    }

    /// Wait (bounded) for an event of this user matching `pred`.
    async fn until(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) {
        let wait = async {
            while let Some(e) = self.seen.recv().await {
                if pred(&e) {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(STEP, wait).await {
            Ok(true) => {}
            _ => {
                eprintln!("demo: no {what} within {STEP:?}");
                std::process::exit(1);
            }
        }
    }
}

fn builder(args: &Args, url: &str, user: u64) -> im_tokio::ClientBuilder {
    Client::builder()
        .endpoint(url)
        .protocol(LiveChat::new(args.room, user, &args.key))
        .reconnect(args.policy())
        .heartbeat(args.heartbeat())
}

async fn scenario(mut args: Args) -> std::io::Result<()> {
    let narrator: &'static Narrator = Box::leak(Box::new(Narrator::new(args.json)));
    args.key = KEY.into();
    args.reconnect_initial = Duration::from_millis(300);
    args.reconnect_max = Duration::from_secs(2);
    let mut server = LiveChatServer::start(KEY).await?;
    narrator.say(&format!(
        "embedded livechat server listening on {}",
        server.url()
    ));

    let mut alice = User::start(narrator, "alice", builder(&args, &server.url(), 1));
    let mut bob = User::start(narrator, "bob", builder(&args, &server.url(), 2));
    alice.client.subscribe("lobby").expect("subscribe");
    bob.client.subscribe("lobby").expect("subscribe");
    alice
        .until("subscription", |e| matches!(e, Event::Subscribed { .. }))
        .await;
    bob.until("subscription", |e| matches!(e, Event::Subscribed { .. }))
        .await;

    narrator.say("alice and bob chat in #lobby");
    alice
        .client
        .send_json("lobby", &json!({"text": "hi bob"}))
        .expect("send");
    bob.until("alice's message", |e| matches!(e, Event::Message(_)))
        .await;
    bob.client
        .send_json("lobby", &json!({"text": "hi alice!"}))
        .expect("send");
    alice
        .until("bob's message", |e| matches!(e, Event::Message(_)))
        .await;

    narrator.say("the server goes down");
    server.stop();
    alice
        .until("disconnect", |e| matches!(e, Event::Disconnected { .. }))
        .await;
    narrator.say("alice keeps typing; her messages wait in the outbox");
    for i in 1..=3 {
        alice
            .client
            .send_json(
                "lobby",
                &json!({"text": format!("sent while offline #{i}")}),
            )
            .expect("queued");
    }
    let mut attempts = 0;
    alice
        .until("two reconnect attempts", |e| {
            attempts += usize::from(matches!(e, Event::Reconnecting { .. }));
            attempts >= 2
        })
        .await;
    narrator.say("the server is back");
    server.resume().await?;
    alice
        .until("reconnect", |e| matches!(e, Event::Subscribed { .. }))
        .await;
    let mut got = 0;
    bob.until("the three queued messages", |e| {
        got += usize::from(matches!(e, Event::Message(_)));
        got >= 3
    })
    .await;
    narrator.say("resubscribed, and the queued messages arrived once, in order");

    narrator.say("alice logs in on another device");
    let mut alice_phone = User::start(narrator, "alice'", builder(&args, &server.url(), 1));
    alice_phone
        .until("login", |e| matches!(e, Event::Connected { .. }))
        .await;
    alice
        .until("kick", |e| matches!(e, Event::Closed { .. }))
        .await;
    alice.client.close().await;
    narrator.say(&format!(
        "alice's first client is closed for good: {} logins in total, no reconnect after the kick",
        server.logins()
    ));

    bob.client.close().await;
    alice_phone.client.close().await;
    narrator.say("done");
    Ok(())
}

async fn interactive(url: String, args: Args) -> std::io::Result<()> {
    let narrator: &'static Narrator = Box::leak(Box::new(Narrator::new(args.json)));
    let (client, mut events) = builder(&args, &url, args.user)
        .connect()
        .map_err(std::io::Error::other)?;
    client
        .subscribe(&args.channel)
        .map_err(std::io::Error::other)?;
    // Fates of sent messages, so that end of input waits for them instead of dropping them.
    let (fates, mut settled) = mpsc::channel(1024);
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            narrator.event("", &event);
            if matches!(event, Event::Acked { .. } | Event::Undelivered { .. }) {
                let _ = fates.send(()).await;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0usize;
    while let Some(line) = lines.next_line().await? {
        match client.send_json(&args.channel, &json!({ "text": line })) {
            Ok(_) => sent += 1,
            Err(e) => narrator.say(&format!("not sent: {e}")),
        }
    }
    // End of input: give what was typed a bounded time to be acknowledged, then close (whatever
    // is still pending is reported as undelivered).
    let _ = tokio::time::timeout(STEP, async {
        for _ in 0..sent {
            settled.recv().await;
        }
    })
    .await;
    client.close().await;
    drop(settled);
    let _ = printer.await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    match args.url.clone() {
        Some(url) => interactive(url, args).await,
        None => scenario(args).await,
    }
}
