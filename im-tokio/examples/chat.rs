//! The im chat demo on tokio.
//!
//! `cargo run -p im-tokio --example chat` starts an embedded livechat server, lets two users
//! chat, restarts the server (reconnect, resubscribe, queued messages delivered in order), then
//! logs one user in elsewhere (kicked, never reconnects). Ends by itself.
//!
//! `cargo run -p im-tokio --example chat -- --url ws://HOST:PORT/ws --room N --user N --key K`
//! connects to a livechat server and sends each stdin line. `--json` prints one JSON object per
//! event. `--help` lists the flags. The story lives in `im_tests::demo`, shared with
//! im-async-std's demo; this file only picks the runtime.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    im_tests::demo::run::<im_tokio::Tokio>(im_tests::demo::args_or_exit()).await
}
