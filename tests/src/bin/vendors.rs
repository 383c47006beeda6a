//! One business function, three vendors: the answer to the seed.
//!
//! `cargo run -p im-tests --bin vendors -- --vendor livechat|socketio|mqtt [--url URL]`
//!
//! The business code below — join a room, say something, print what arrives — is written once.
//! Only `connect` knows which vendor it talks to. Without `--url` the example starts a real
//! server of that vendor on a free loopback port (the reference livechat server, Node's
//! socket.io, Mosquitto).

use std::time::Duration;

use im_tests::{LiveChatServer, Mosquitto, SocketIoServer};
use im_tokio::{Client, Event, Events, LiveChat, Mqtt, SocketIo};

/// The vendor-specific part: which protocol, nothing else.
fn connect(vendor: &str, url: &str, user: u64) -> (Client, Events) {
    let builder = Client::builder().endpoint(url);
    let builder = match vendor {
        "livechat" => builder.protocol(LiveChat::new(1, user, "vendors-key")),
        // This app's rooms are joined with its own `subscribe` event (tests/socketio/server.js).
        "socketio" => builder.protocol(SocketIo::new().room_events("subscribe", "unsubscribe")),
        "mqtt" => builder.protocol(Mqtt::new(format!("im-user-{user}"))),
        other => panic!("unknown vendor {other}: livechat, socketio or mqtt"),
    };
    builder.connect().expect("valid configuration")
}

/// The business code: vendor-neutral. Join the room, wait until the other side is there too,
/// say hello, and print what arrives.
async fn chat(me: &str, client: &Client, events: &mut Events, room: &str, lines: &[&str]) {
    client.subscribe(room).expect("subscribe");
    while let Some(event) = events.recv().await {
        if let Event::Subscribed { .. } = event {
            break;
        }
    }
    for line in lines {
        client
            .send_json(room, &serde_json::json!({ "from": me, "text": line }))
            .expect("send");
    }
}

async fn print_arrivals(me: &str, events: &mut Events, expected: usize) {
    let mut got = 0;
    while got < expected {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(Event::Message(m))) => {
                let body: serde_json::Value = m.body.decode().expect("JSON body");
                let (from, text) = (body["from"].as_str(), body["text"].as_str());
                println!(
                    "{me} got in #{}: {} says {:?}",
                    m.channel,
                    from.unwrap_or("?"),
                    text.unwrap_or_default()
                );
                got += 1;
            }
            Ok(Some(_)) => {}
            _ => panic!("{me}: only {got} of {expected} messages arrived"),
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut vendor, mut url) = (String::from("livechat"), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--vendor" => vendor = args.next().expect("--vendor NAME"),
            "--url" => url = args.next(),
            _ => panic!("usage: vendors --vendor livechat|socketio|mqtt [--url URL]"),
        }
    }
    // Embedded servers live until the end of main.
    let (_livechat, _sio, _mqtt);
    let url = match (url, vendor.as_str()) {
        (Some(url), _) => url,
        (None, "livechat") => {
            let s = LiveChatServer::start("vendors-key").expect("start livechat server");
            let url = s.url();
            _livechat = s;
            url
        }
        (None, "socketio") => {
            let s = SocketIoServer::start(Duration::from_secs(25), Duration::from_secs(20));
            let url = s.url();
            _sio = s;
            url
        }
        (None, "mqtt") => {
            let s = Mosquitto::start();
            let url = s.url();
            _mqtt = s;
            url
        }
        (None, other) => panic!("unknown vendor {other}"),
    };
    println!("vendor {vendor} at {url}");

    let (alice, mut alice_events) = connect(&vendor, &url, 1);
    let (bob, mut bob_events) = connect(&vendor, &url, 2);
    let room = "lobby";
    // Bob joins first so that he hears everything Alice says.
    chat("bob", &bob, &mut bob_events, room, &[]).await;
    chat(
        "alice",
        &alice,
        &mut alice_events,
        room,
        &["hi bob", "same code, any vendor"],
    )
    .await;
    print_arrivals("bob", &mut bob_events, 2).await;
    alice.close().await;
    bob.close().await;
}
