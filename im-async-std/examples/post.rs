//! Post messages to a livechat room from smol, with nothing but im-async-std's public API: the
//! client's task runs on the application's own executor (`AsyncIo::with_executor`), and the
//! program ends once every message has its fate (`Sent`, `Acked` or `Undelivered`).
//!
//! ```sh
//! cargo run -p im-tests --bin livechat-server -- --port 9001 --key secret &
//! cargo run -p im-async-std --example post -- --url ws://127.0.0.1:9001/ws --key secret hello world
//! ```

use std::sync::Arc;

use clap::Parser;
use im_async_std::{AsyncIo, Client, ClientBuilder, Event, LiveChat};

#[derive(Parser, Debug)]
#[command(version, about = "Post each argument as a message to a livechat room")]
struct Args {
    /// The livechat server, ws://HOST:PORT/ws.
    #[arg(long)]
    url: String,
    /// The room key.
    #[arg(long, env = "IM_KEY", hide_env_values = true)]
    key: String,
    #[arg(long, default_value_t = 1)]
    room: u64,
    #[arg(long, default_value_t = 1)]
    user: u64,
    #[arg(long, default_value = "lobby")]
    channel: String,
    /// The messages.
    #[arg(required = true)]
    text: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let executor = Arc::new(smol::Executor::new());
    smol::block_on(executor.run(async {
        let (client, mut events) =
            ClientBuilder::with_runtime(AsyncIo::with_executor(executor.clone()))
                .endpoint(&args.url)
                .protocol(LiveChat::new(args.room, args.user, &args.key))
                .connect()?;
        post(&client, &args).await?;
        let mut pending = args.text.len();
        while let Some(event) = events.recv().await {
            println!("{event:?}");
            if matches!(
                event,
                Event::Sent { .. } | Event::Acked { .. } | Event::Undelivered { .. }
            ) {
                pending -= 1;
                if pending == 0 {
                    client.close().await;
                }
            }
        }
        Ok(())
    }))
}

async fn post(client: &Client, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    for text in &args.text {
        client.send_json(&args.channel, &serde_json::json!({ "text": text }))?;
    }
    Ok(())
}
