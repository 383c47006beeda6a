//! The reference livechat server on its own, for developing against:
//! `cargo run -p im-tests --bin livechat-server -- --port 9001 --key secret`
//! Serves ws://127.0.0.1:PORT/ws (see docs/protocols/livechat.md); `--port 0` picks a free port.
//! Stops on Ctrl-C.

use im_tests::LiveChatServer;

const USAGE: &str = "\
usage: livechat-server [--port N] [--key KEY] [--seed-exact] [--hostile]

The reference livechat server on ws://127.0.0.1:PORT/ws (docs/protocols/livechat.md).

  --port N       port on 127.0.0.1 (default 9001; 0 picks a free one)
  --key KEY      the room key every room's auth code is made with (default: secret)
  --seed-exact   speak exactly the seed's protocol: no auth_ok, no rooms, no acks, no
                 reconnect hints (default: im's dialect, announced in auth1)
  --hostile      greet every login with garbage, deep JSON, a 10 MiB frame and a flood
  -h, --help     print this and exit
";

fn usage() -> ! {
    eprint!("{USAGE}");
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let mut port = 9001u16;
    let mut key = String::from("secret");
    let mut hostile = false;
    let mut seed_exact = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--seed-exact" => seed_exact = true,
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
    let server = match seed_exact {
        true => LiveChatServer::start_seed_exact_on(port, &key)?,
        false => LiveChatServer::start_on(port, &key)?,
    };
    server.set_hostile(hostile);
    let dialect = if seed_exact {
        "the seed's dialect"
    } else {
        "im's dialect"
    };
    println!(
        "livechat server on {} ({dialect}; room key from --key)",
        server.url()
    );
    im_tests::runtime::get().block_on(tokio::signal::ctrl_c())?;
    println!("bye");
    Ok(())
}
