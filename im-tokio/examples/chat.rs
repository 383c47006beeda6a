//! Chat through any vendor from the terminal, with nothing but im-tokio's public API: join a
//! channel, send every line typed on stdin, print every event; at end of input, wait for the
//! fate of each line sent (`Sent`, `Acked` or `Undelivered`), then close.
//!
//! ```sh
//! cargo run -p im-tests --bin livechat-server -- --port 9001 --key secret &
//! cargo run -p im-tokio --example chat -- --url ws://127.0.0.1:9001/ws --key secret
//! cargo run -p im-tokio --example chat -- --vendor mqtt --url ws://127.0.0.1:8080 --channel room/1
//! cargo run -p im-tokio --example chat -- --help
//! ```

use std::time::Duration;

use clap::{Parser, ValueEnum};
use im_tokio::{Client, Event, LiveChat, Mqtt, Nats, ReconnectPolicy, SocketIo};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Chat through any vendor: each line typed is a message"
)]
struct Args {
    /// The server's protocol.
    #[arg(long, value_enum, default_value_t = Vendor::Livechat)]
    vendor: Vendor,
    /// The server: livechat ws://HOST:PORT/ws; socketio http://HOST:PORT[/namespace];
    /// mqtt ws://HOST:PORT (subprotocol mqtt); nats ws://HOST:PORT. Repeat for failover.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// The channel to join and send to (room, topic, subject or event name).
    #[arg(long, default_value = "lobby")]
    channel: String,
    /// Your user id (livechat; also names the MQTT and NATS client).
    #[arg(long, default_value_t = 1)]
    user: u64,
    /// The livechat room.
    #[arg(long, default_value_t = 1)]
    room: u64,
    /// The livechat room key.
    #[arg(
        long,
        env = "IM_KEY",
        hide_env_values = true,
        default_value = "demo-key"
    )]
    key: String,
    /// A NATS token.
    #[arg(long, env = "IM_NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Consecutive failed attempts before giving up (default: never).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
    /// How long to wait for the fates of the lines sent once input ends, in seconds.
    #[arg(long, default_value_t = 10)]
    linger: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Vendor {
    Livechat,
    Socketio,
    Mqtt,
    Nats,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = Client::builder()
        .name(format!("chat-{}", args.user))
        .reconnect(ReconnectPolicy::default().max_attempts(args.max_attempts));
    for url in &args.url {
        builder = builder.endpoint(url);
    }
    let name = format!("im-chat-{}", args.user);
    let builder = match args.vendor {
        Vendor::Livechat => builder.protocol(LiveChat::new(args.room, args.user, &args.key)),
        Vendor::Socketio => builder.protocol(SocketIo::new()),
        Vendor::Mqtt => builder.protocol(Mqtt::new(name)),
        Vendor::Nats => builder.protocol(match &args.token {
            Some(token) => Nats::new(name).with_token(token),
            None => Nats::new(name),
        }),
    };
    let (client, mut events) = builder.connect()?;
    client.subscribe(&args.channel)?;

    // Until input ends: send each line, print each event.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = 0usize;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let sent = match args.vendor {
                    // The seed's livechat carries JSON bodies.
                    Vendor::Livechat => client
                        .send_json(&args.channel, &serde_json::json!({ "text": line }))
                        .map_err(|e| e.to_string()),
                    _ => client.send_text(&args.channel, line).map_err(|e| e.to_string()),
                };
                match sent {
                    Ok(id) => {
                        pending += 1;
                        println!("queued {id:?}");
                    }
                    Err(why) => println!("not sent: {why}"),
                }
            }
            event = events.recv() => match event {
                Some(event) => pending -= usize::from(print_event(&event)),
                None => return Ok(()), // closed (kicked, gave up)
            },
        }
    }
    // Then give what was sent `--linger` seconds to be settled, and close: whatever is still
    // queued is reported as Undelivered before Closed.
    let linger = tokio::time::sleep(Duration::from_secs(args.linger));
    tokio::pin!(linger);
    while pending > 0 {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => pending -= usize::from(print_event(&event)),
                None => return Ok(()),
            },
            _ = &mut linger => break,
        }
    }
    client.close().await;
    while let Some(event) = events.recv().await {
        print_event(&event);
    }
    Ok(())
}

/// Print `event`; returns whether it was the fate of a message sent.
fn print_event(event: &Event) -> bool {
    match event {
        Event::Message(m) => match m.body.as_text() {
            Some(text) => println!(
                "#{} {}: {text}",
                m.channel,
                m.from.as_deref().unwrap_or("?")
            ),
            None => println!(
                "#{} {}: {:?}",
                m.channel,
                m.from.as_deref().unwrap_or("?"),
                m.body
            ),
        },
        Event::Reconnecting {
            attempt,
            delay,
            cause,
        } => {
            println!("reconnecting (attempt {attempt}, in {delay:?}): {cause:?}")
        }
        other => println!("{other:?}"),
    }
    matches!(
        event,
        Event::Sent { .. } | Event::Acked { .. } | Event::Undelivered { .. }
    )
}
