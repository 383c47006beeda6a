//! The web chat page: an embedded livechat server and the page built on im-web, served on
//! 127.0.0.1. Open it in two tabs and chat; press Enter here to stop the server (the pages say
//! they are reconnecting, and what you type waits), Enter again to bring it back (the waiting
//! lines arrive, once, in order).
//!
//! ```text
//! cargo run -p im-tests --bin web-demo                       # serve on :8080
//! cargo run -p im-tests --bin web-demo -- --check shot.png   # what CI runs
//! ```
//!
//! `--check` drives two headless Chromium windows through chromedriver: types a line in one,
//! sees it in the other, stops the server, sees "reconnecting", types a line while it is down,
//! brings the server back, sees that line arrive once, and saves pictures of both windows
//! (`PNG`: window 2 at the end; `<stem>-offline.png`: window 1 while the server is down). It
//! also fails when the page's `.wasm` weighs more than its budget, gzipped.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use im_tests::peers::find_binary;
use im_tests::web::{build_page, PageServer, BUDGET_GZIPPED};
use im_tests::webdriver::{Driver, Session};
use im_tests::LiveChatServer;

const KEY: &str = "web-demo-key";

#[derive(Parser)]
#[command(about = "The im web chat page, with an embedded livechat server")]
struct Args {
    /// The page's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Drive two headless Chromium windows through the demo, save the second one's picture
    /// here, and exit (non-zero if anything did not happen).
    #[arg(long, value_name = "PNG")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: Args) -> Result<(), String> {
    let page = build_page(args.check.is_some())?;
    println!("{}", page.size);
    if args.check.is_some() && page.size.gzipped > BUDGET_GZIPPED {
        return Err(format!(
            "the page's .wasm is {} B gzipped, over the budget of {BUDGET_GZIPPED} B",
            page.size.gzipped
        ));
    }
    let mut server = LiveChatServer::start(KEY).map_err(|e| e.to_string())?;
    // A page that rejoins after an outage catches up on what was said meanwhile.
    server.set_history(50);
    let port = if args.check.is_some() { 0 } else { args.port };
    let site = PageServer::start(&page, port, &server.url(), KEY).map_err(|e| e.to_string())?;
    match args.check {
        Some(png) => check(&site, &mut server, &png),
        None => interactive(&site, &mut server),
    }
}

fn interactive(site: &PageServer, server: &mut LiveChatServer) -> Result<(), String> {
    println!("chat server: {}", server.url());
    println!("open {} and {} in two tabs", site.url(1), site.url(2));
    println!("Enter: stop / restart the chat server; Ctrl-C: quit");
    let mut running = true;
    for line in std::io::stdin().lock().lines() {
        line.map_err(|e| e.to_string())?;
        if running {
            server.stop();
            println!("server stopped: the pages reconnect, and what you type waits");
        } else {
            server.resume().map_err(|e| e.to_string())?;
            println!("server back: the waiting lines go out");
        }
        running = !running;
    }
    Ok(())
}

fn check(site: &PageServer, server: &mut LiveChatServer, png: &PathBuf) -> Result<(), String> {
    let chromedriver = std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| find_binary("chromedriver"))
        .ok_or("chromedriver is not installed: apt-get install chromium chromium-driver")?;
    let driver = Driver::start(&chromedriver).map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(20);
    let open = |user: u64| -> Result<Session, String> {
        let tab = driver.session(720, 520)?;
        tab.goto(&site.url(user))?;
        tab.wait_text("#state", "connected", limit, |s| s == "connected")?;
        Ok(tab)
    };
    let (one, two) = (open(1)?, open(2)?);
    println!("two windows connected");

    one.type_into("#line", "hello from window 1\u{E007}")?;
    two.wait_text("#lines", "the line in window 2", limit, |t| {
        t.contains("hello from window 1")
    })?;
    two.type_into("#line", "hi 1, window 2 here\u{E007}")?;
    one.wait_text("#lines", "the answer in window 1", limit, |t| {
        t.contains("hi 1, window 2 here")
    })?;
    println!("a line each way");

    server.stop();
    let state = one.wait_text("#state", "reconnecting", limit, |s| {
        s.starts_with("reconnecting")
    })?;
    println!("server stopped: window 1 says {state:?}");
    one.type_into("#line", "typed while the server was down\u{E007}")?;
    let queued = one.script("return document.querySelector('#lines li:last-child').className")?;
    if queued != "pending" {
        return Err(format!("the offline line is {queued}, not pending"));
    }
    let offline = png.with_file_name(format!(
        "{}-offline.png",
        png.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("web-chat")
    ));
    save(&offline, &one.screenshot()?, "window 1, server down")?;
    server.resume().map_err(|e| e.to_string())?;
    let lines = two.wait_text("#lines", "the queued line in window 2", limit, |t| {
        t.contains("typed while the server was down")
    })?;
    one.wait_text("#state", "connected again", limit, |s| s == "connected")?;
    let times = lines.matches("typed while the server was down").count();
    if times != 1 {
        return Err(format!("the queued line arrived {times} times"));
    }
    let delivered =
        one.script("return document.querySelector('#lines li:last-child').className")?;
    if delivered != "delivered" {
        return Err(format!(
            "the queued line is {delivered} in window 1, not delivered"
        ));
    }
    println!("server back: the queued line arrived once and window 1 marks it delivered");

    save(png, &two.screenshot()?, "window 2, after the outage")
}

fn save(path: &PathBuf, picture: &[u8], what: &str) -> Result<(), String> {
    std::fs::write(path, picture).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "screenshot of {what}: {} ({} B)",
        path.display(),
        picture.len()
    );
    Ok(())
}
