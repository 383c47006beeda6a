//! The third driver (im-proto/examples/blocking_driver.rs: im-proto by hand over blocking std::net +
//! tungstenite, one thread) against the reference server, across a server restart.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use im_tests::LiveChatServer;

#[test]
fn blocking_driver_chats_and_survives_a_server_restart() {
    let key = "blocking-key";
    let mut server = LiveChatServer::start(key).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blocking-driver"))
        .args([server.url().as_str(), key, "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // Lines arrive on a channel so the test can give up after a deadline instead of hanging.
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut restarted = false;
    let mut transcript = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if line == "acked 10" && !restarted {
                    server.restart().unwrap();
                    restarted = true;
                }
                transcript.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("blocking driver stalled; output so far: {transcript:#?}");
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status}; output: {transcript:#?}");
    assert!(restarted, "the restart happened mid-run");
    let received: Vec<i64> = server
        .delivered()
        .iter()
        .map(|d| d.message["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        received,
        (0..30).collect::<Vec<_>>(),
        "each message once, in order"
    );
    assert!(server.logins() >= 2, "it reconnected after the restart");
    assert_eq!(
        transcript.iter().filter(|l| *l == "connected").count(),
        server.logins()
    );
}
