//! The im demo, the README's first command: `cargo run -p im-tests --bin demo`.
//!
//! An embedded livechat server; two users chat; the server restarts (reconnect, resubscribe,
//! queued messages delivered in order); one user logs in elsewhere (kicked, never reconnects).
//! Ends by itself. `--runtime async-std` runs the same story on im-async-std, `--json` prints
//! one JSON object per event, `--help` says the rest.

use clap::Parser;
use im_tests::demo::{scenario, Args, RuntimeName};

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    match args.runtime {
        RuntimeName::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(scenario::<im_tokio::Tokio>(args)),
        RuntimeName::AsyncStd => async_std::task::block_on(scenario::<im_async_std::AsyncIo>(args)),
    }
}
