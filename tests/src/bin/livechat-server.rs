//! The reference livechat server on its own, for developing against:
//! `cargo run -p im-tests --bin livechat-server -- --port 9001 --key secret`
//! Serves ws://127.0.0.1:PORT/ws (see docs/protocols/livechat.md); `--port 0` picks a free port.
//! Stops on Ctrl-C.

use im_tests::LiveChatServer;

fn usage() -> ! {
    eprintln!("usage: livechat-server [--port N] [--key KEY] [--hostile]");
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let mut port = 9001u16;
    let mut key = String::from("secret");
    let mut hostile = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--key" => key = args.next().unwrap_or_else(|| usage()),
            // Greet every login with garbage, deep JSON, a 10 MiB frame and a flood (tests).
            "--hostile" => hostile = true,
            _ => usage(),
        }
    }
    let server = LiveChatServer::start_on(port, &key)?;
    server.set_hostile(hostile);
    println!("livechat server on {} (room key from --key)", server.url());
    im_tests::runtime::get().block_on(tokio::signal::ctrl_c())?;
    println!("bye");
    Ok(())
}
