//! What the chat demos share, whatever the runtime: command-line flags, and how events are
//! narrated (human, timestamped) or printed (`--json`, one object per line).

use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use im_driver::{Client, ClientBuilder, Runtime};
use im_proto::{
    Body, Cause, CloseReason, Error, Event, HeartbeatMode, LiveChat, Mqtt, Nats, ProtocolError,
    ReconnectPolicy, SocketIo,
};
use serde_json::{json, Value};

use crate::LiveChatServer;

/// The demo's flags. Without `--url` the demo runs its embedded scenario.
#[derive(Clone, Debug)]
pub struct Args {
    /// `livechat` (the default), `socketio`, `mqtt` or `nats`.
    pub vendor: String,
    pub url: Option<String>,
    pub room: u64,
    pub user: u64,
    pub key: String,
    pub channel: String,
    pub json: bool,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    pub max_attempts: Option<u32>,
    /// MQTT client id (default `im-chat-<user>`).
    pub client_id: Option<String>,
    /// NATS token.
    pub token: Option<String>,
    /// Socket.IO namespace-connect `auth` object, as JSON.
    pub auth: Option<Value>,
}

pub const USAGE: &str = "\
usage: chat [--json]  (embedded livechat server scenario)
       chat [--vendor livechat|socketio|mqtt|nats] --url URL [--channel NAME] [--json]
            [--room N --user N --key KEY]   (livechat credentials)
            [--client-id ID]                (mqtt; default im-chat-<user>)
            [--token TOKEN]                 (nats)
            [--auth JSON]                   (socket.io namespace-connect auth)
            [--heartbeat-interval-ms N] [--heartbeat-timeout-ms N]
            [--reconnect-initial-ms N] [--reconnect-max-ms N] [--max-attempts N]

With --url, every line read from stdin is sent to the channel (livechat: {\"text\": LINE};
other vendors: the line as text), every event is printed, and end of input waits for the
fates of what was sent (Sent, Acked or Undelivered), then closes. URLs: livechat
ws://HOST:PORT/ws; socketio http://HOST:PORT[/namespace] (or the Engine.IO ws:// URL); mqtt
ws://HOST:PORT (subprotocol mqtt); nats ws://HOST:PORT. Default channel: lobby.";

impl Default for Args {
    fn default() -> Self {
        Args {
            vendor: "livechat".into(),
            url: None,
            room: 1,
            user: 1,
            key: "demo-key".into(),
            channel: "lobby".into(),
            json: false,
            heartbeat_interval: Duration::from_secs(25),
            heartbeat_timeout: Duration::from_secs(10),
            reconnect_initial: ReconnectPolicy::default().initial,
            reconnect_max: ReconnectPolicy::default().max_delay,
            max_attempts: None,
            client_id: None,
            token: None,
            auth: None,
        }
    }
}

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = args.into_iter();
        let ms = |v: Option<String>, flag: &str| -> Result<Duration, String> {
            v.and_then(|v| v.parse().ok())
                .filter(|n: &u64| *n > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| format!("{flag} needs a positive number of milliseconds"))
        };
        let num = |v: Option<String>, flag: &str| -> Result<u64, String> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{flag} needs a number"))
        };
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--vendor" => {
                    a.vendor = it.next().ok_or("--vendor needs a value")?;
                    if !["livechat", "socketio", "mqtt", "nats"].contains(&a.vendor.as_str()) {
                        return Err(format!("unknown vendor {:?}\n{USAGE}", a.vendor));
                    }
                }
                "--client-id" => a.client_id = Some(it.next().ok_or("--client-id needs a value")?),
                "--token" => a.token = Some(it.next().ok_or("--token needs a value")?),
                "--auth" => {
                    let json = it.next().ok_or("--auth needs a JSON object")?;
                    a.auth = Some(serde_json::from_str(&json).map_err(|e| format!("--auth: {e}"))?);
                }
                "--url" => a.url = Some(it.next().ok_or("--url needs a value")?),
                "--room" => a.room = num(it.next(), "--room")?,
                "--user" => a.user = num(it.next(), "--user")?,
                "--key" => a.key = it.next().ok_or("--key needs a value")?,
                "--channel" => a.channel = it.next().ok_or("--channel needs a value")?,
                "--json" => a.json = true,
                "--heartbeat-interval-ms" => a.heartbeat_interval = ms(it.next(), &flag)?,
                "--heartbeat-timeout-ms" => a.heartbeat_timeout = ms(it.next(), &flag)?,
                "--reconnect-initial-ms" => a.reconnect_initial = ms(it.next(), &flag)?,
                "--reconnect-max-ms" => a.reconnect_max = ms(it.next(), &flag)?,
                "--max-attempts" => {
                    a.max_attempts = Some(num(it.next(), &flag)? as u32).filter(|n| *n > 0)
                }
                "-h" | "--help" => return Err(HELP.into()),
                other => return Err(format!("unknown flag {other}\n{USAGE}")),
            }
        }
        if a.url.is_none() && a.vendor != "livechat" {
            return Err(format!("--vendor {} needs --url\n{USAGE}", a.vendor));
        }
        Ok(a)
    }

    pub fn policy(&self) -> ReconnectPolicy {
        ReconnectPolicy {
            initial: self.reconnect_initial,
            max_delay: self.reconnect_max.max(self.reconnect_initial),
            max_attempts: self.max_attempts,
            ..ReconnectPolicy::default()
        }
    }

    pub fn heartbeat(&self) -> HeartbeatMode {
        HeartbeatMode::ClientDriven {
            interval: self.heartbeat_interval,
            timeout: self.heartbeat_timeout,
        }
    }
}

/// Prints events and narration with the time since the demo started.
#[derive(Debug)]
pub struct Narrator {
    start: Instant,
    json: bool,
}

impl Narrator {
    pub fn new(json: bool) -> Self {
        Narrator {
            start: Instant::now(),
            json,
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>6.2}s]", self.start.elapsed().as_secs_f64())
    }

    /// A line of story. In `--json` mode it goes to stderr, keeping stdout pure JSON.
    pub fn say(&self, text: &str) {
        if self.json {
            eprintln!("{} {text}", self.stamp());
        } else {
            println!("{} == {text}", self.stamp());
        }
    }

    /// An event of `who`'s client.
    pub fn event(&self, who: &str, event: &Event) {
        if self.json {
            if let Some(mut v) = event_json(event) {
                if !who.is_empty() {
                    v["user"] = json!(who);
                }
                println!("{v}");
            }
        } else if let Some(text) = describe(event) {
            println!("{} {who:>6}: {text}", self.stamp());
        }
    }
}

fn body_value(body: &Body) -> Value {
    match body {
        Body::Json(_) | Body::Text(_) => body
            .decode::<Value>()
            .unwrap_or_else(|_| json!(body.as_text().unwrap_or_default())),
        other => json!(other.as_bytes()),
    }
}

fn cause_text(cause: &Cause) -> String {
    match cause {
        Cause::ClosedByPeer { code, reason } => {
            format!(
                "closed by server (code {code:?}{})",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(", {reason}")
                }
            )
        }
        Cause::Transport(e) => format!("transport error: {e}"),
        Cause::Refused { status } => format!("the server refused the upgrade: HTTP {status}"),
        Cause::DeadLink => "no heartbeat answer: dead link".into(),
        Cause::ConnectTimeout => "connect timeout".into(),
        Cause::HandshakeTimeout => "handshake timeout".into(),
        Cause::ServerRequested(r) => format!("server asked to reconnect: {r}"),
        Cause::Switched => "switching vendor".into(),
        other => format!("{other:?}"),
    }
}

fn close_text(reason: &CloseReason) -> String {
    match reason {
        CloseReason::User => "closed by the user".into(),
        CloseReason::Kicked { reason } => format!("kicked: {reason}"),
        CloseReason::GaveUp { attempts } => format!("gave up after {attempts} attempts"),
        CloseReason::Fatal(e) => format!("fatal: {e}"),
        CloseReason::Refused { status } => format!("credentials refused: HTTP {status}"),
        CloseReason::EventsOverflow { pending } => {
            format!("closed: the application stopped reading events ({pending} pending)")
        }
        other => format!("{other:?}"),
    }
}

/// `(kind, detail)` of an error event.
fn error_kind(error: &Error) -> (&'static str, String) {
    let kind = match error {
        Error::Protocol(ProtocolError::Malformed(_)) => "malformed",
        Error::Protocol(ProtocolError::InvalidUtf8) => "invalid_utf8",
        Error::Protocol(ProtocolError::UnexpectedFrame(_)) => "unexpected_frame",
        Error::Protocol(ProtocolError::TooLarge { .. }) => "too_large",
        Error::Protocol(ProtocolError::Violation(_)) => "violation",
        Error::Protocol(ProtocolError::AuthFailed(_)) => "auth_failed",
        Error::Protocol(ProtocolError::Server(_)) => "server",
        Error::Subscribe { .. } => "subscribe",
        _ => "other",
    };
    (kind, error.to_string())
}

/// One line of narration for an event, or `None` for the quiet ones (sent, acked).
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Connected { endpoint } => format!("connected to {endpoint}"),
        Event::Disconnected { cause } => format!("disconnected: {}", cause_text(cause)),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
        } => format!(
            "reconnecting, attempt {attempt} in {} ms ({})",
            delay.as_millis(),
            cause_text(cause)
        ),
        Event::Message(m) => format!(
            "message in #{} from {}: {}",
            m.channel,
            m.from.as_deref().unwrap_or("?"),
            body_value(&m.body)
        ),
        Event::Heartbeat { rtt: Some(rtt) } => {
            format!("heartbeat, rtt {:.1} ms", rtt.as_secs_f64() * 1e3)
        }
        Event::Heartbeat { rtt: None } => "heartbeat".into(),
        Event::Subscribed { channel } => format!("subscribed to #{channel}"),
        Event::SubscribeRefused { channel, reason } => {
            format!("subscription to #{channel} refused: {reason}")
        }
        Event::Kicked { reason } => format!("KICKED: {reason}"),
        Event::GaveUp { attempts } => format!("gave up after {attempts} attempts"),
        Event::Undelivered {
            id,
            reason,
            maybe_delivered,
            ..
        } => {
            format!("{id} undelivered ({reason:?}, maybe delivered: {maybe_delivered})")
        }
        Event::Error(e) => format!("error: {e}"),
        Event::Closed { reason } => format!("closed: {}", close_text(reason)),
        _ => return None,
    })
}

/// The `--json` object of an event, or `None` for events outside the demo's vocabulary
/// (subscribed).
pub fn event_json(event: &Event) -> Option<Value> {
    Some(match event {
        Event::Connected { endpoint } => {
            json!({"event": "connected", "endpoint": endpoint.to_string()})
        }
        Event::Message(m) => json!({
            "event": "message", "channel": m.channel, "body": body_value(&m.body),
            "from": m.from, "id": m.id,
        }),
        Event::Heartbeat { rtt } => json!({
            "event": "heartbeat", "rtt_ms": rtt.map(|r| r.as_secs_f64() * 1e3),
        }),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
        } => json!({
            "event": "reconnecting", "attempt": attempt, "delay_ms": delay.as_millis() as u64,
            "cause": cause_text(cause),
        }),
        Event::Disconnected { cause } => {
            json!({"event": "disconnected", "cause": cause_text(cause)})
        }
        Event::Kicked { reason } => json!({"event": "kicked", "reason": reason}),
        // A message's fate: written with no ack to come (at-most-once), or acknowledged.
        Event::Sent { id } => json!({"event": "sent", "id": id.0}),
        Event::Acked { id } => json!({"event": "acked", "id": id.0}),
        Event::GaveUp { attempts } => json!({"event": "gave_up", "attempts": attempts}),
        Event::Closed { reason } => json!({"event": "closed", "reason": close_text(reason)}),
        Event::Error(e) => {
            let (kind, detail) = error_kind(e);
            json!({"event": "error", "kind": kind, "detail": detail})
        }
        Event::Undelivered {
            id,
            reason,
            maybe_delivered,
            ..
        } => json!({
            "event": "error", "kind": "undelivered",
            "detail": format!("{id}: {reason:?} (maybe delivered: {maybe_delivered})"),
        }),
        Event::SubscribeRefused { channel, reason } => json!({
            "event": "error", "kind": "subscribe_refused", "detail": format!("#{channel}: {reason}"),
        }),
        _ => return None,
    })
}

// ----- the demo itself, on any runtime -----

const KEY: &str = "demo-key";
/// Bound on every step of the scenario.
const STEP: Duration = Duration::from_secs(10);

/// A demo user: the client, and the events it got (printed as they arrive).
struct User<R: Runtime + Default> {
    client: Client<R>,
    seen: mpsc::Receiver<Event>,
}

impl<R: Runtime + Default> User<R> {
    fn start(
        narrator: &'static Narrator,
        name: &'static str,
        builder: ClientBuilder<R>,
    ) -> User<R> {
        let (client, mut events) = builder.connect().expect("valid demo configuration");
        let (mut tx, seen) = mpsc::channel(1024);
        R::default().spawn(async move {
            while let Some(event) = events.recv().await {
                narrator.event(name, &event);
                let _ = tx.try_send(event);
            }
        });
        User { client, seen }
    }

    /// Wait (bounded) for an event of this user matching `pred`; the demo fails otherwise.
    async fn until(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool) {
        let wait = async {
            while let Some(e) = self.seen.next().await {
                if pred(&e) {
                    return true;
                }
            }
            false
        };
        if !within(wait).await.unwrap_or(false) {
            eprintln!("demo: no {what} within {STEP:?}");
            std::process::exit(1);
        }
    }
}

/// `f`, or `None` after [`STEP`].
async fn within<F: std::future::Future>(f: F) -> Option<F::Output> {
    crate::wait::timeout(STEP, f).await
}

fn builder<R: Runtime + Default>(args: &Args, url: &str, user: u64) -> ClientBuilder<R> {
    let builder = Client::<R>::builder()
        .endpoint(url)
        .reconnect(args.policy())
        .heartbeat(args.heartbeat());
    match args.vendor.as_str() {
        "socketio" => builder.protocol(match &args.auth {
            Some(auth) => SocketIo::new().with_auth(auth.clone()),
            None => SocketIo::new(),
        }),
        "mqtt" => builder.protocol(Mqtt::new(
            args.client_id
                .clone()
                .unwrap_or_else(|| format!("im-chat-{user}")),
        )),
        "nats" => builder.protocol(match &args.token {
            Some(token) => Nats::new(format!("im-chat-{user}")).with_token(token),
            None => Nats::new(format!("im-chat-{user}")),
        }),
        _ => builder.protocol(LiveChat::new(args.room, user, &args.key)),
    }
}

/// The embedded scenario: chat, restart, kick. Narrated; exits non-zero if a step fails.
pub async fn scenario<R: Runtime + Default>(mut args: Args) -> std::io::Result<()> {
    let narrator: &'static Narrator = Box::leak(Box::new(Narrator::new(args.json)));
    args.key = KEY.into();
    args.reconnect_initial = Duration::from_millis(300);
    args.reconnect_max = Duration::from_secs(2);
    let mut server = LiveChatServer::start(KEY)?;
    narrator.say(&format!(
        "embedded livechat server listening on {}",
        server.url()
    ));

    let mut alice = User::start(narrator, "alice", builder::<R>(&args, &server.url(), 1));
    let mut bob = User::start(narrator, "bob", builder::<R>(&args, &server.url(), 2));
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
    narrator.say("the server is back; bob's app notices first and says so (network_online)");
    server.resume()?;
    // Bob skips the rest of his backoff, so he is back in #lobby before alice's queued messages
    // arrive (the server does not replay a room to late joiners); alice waits out hers.
    bob.client.network_online();
    bob.until("bob back in #lobby", |e| {
        matches!(e, Event::Subscribed { .. })
    })
    .await;
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
    let mut alice_phone = User::start(narrator, "alice'", builder::<R>(&args, &server.url(), 1));
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

    // Wait for each printer to show `Closed`, so nothing prints after "done".
    for user in [&mut bob, &mut alice_phone] {
        user.client.close().await;
        user.until("close", |e| matches!(e, Event::Closed { .. }))
            .await;
    }
    narrator.say("done");
    Ok(())
}

/// Connect to `url`, send every stdin line as a chat message, print the events.
pub async fn interactive<R: Runtime + Default>(url: String, args: Args) -> std::io::Result<()> {
    let narrator: &'static Narrator = Box::leak(Box::new(Narrator::new(args.json)));
    let (client, mut events) = builder::<R>(&args, &url, args.user)
        .connect()
        .map_err(std::io::Error::other)?;
    client
        .subscribe(&args.channel)
        .map_err(std::io::Error::other)?;
    // Fates of sent messages, so that end of input waits for them instead of dropping them.
    let (mut fates, mut settled) = mpsc::channel(1024);
    let (done_tx, done) = futures_channel::oneshot::channel::<()>();
    R::default().spawn(async move {
        while let Some(event) = events.recv().await {
            narrator.event("", &event);
            if matches!(
                event,
                Event::Sent { .. } | Event::Acked { .. } | Event::Undelivered { .. }
            ) {
                let _ = fates.send(()).await;
            }
        }
        let _ = done_tx.send(());
    });
    // Stdin is blocking: a thread reads it and hands lines over a bounded channel.
    let (mut lines_tx, mut lines) = mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if futures_executor::block_on(lines_tx.send(line)).is_err() {
                break;
            }
        }
    });
    let mut sent = 0usize;
    while let Some(line) = lines.next().await {
        let sent_now = match args.vendor.as_str() {
            "livechat" => client.send_json(&args.channel, &json!({ "text": line })),
            _ => client.send_text(&args.channel, line).map_err(Into::into),
        };
        match sent_now {
            Ok(_) => sent += 1,
            Err(e) => narrator.say(&format!("not sent: {e}")),
        }
    }
    // End of input: give what was typed a bounded time to be acknowledged, then close (whatever
    // is still pending is reported as undelivered).
    let _ = within(async {
        for _ in 0..sent {
            settled.next().await;
        }
    })
    .await;
    client.close().await;
    drop(settled);
    let _ = done.await;
    Ok(())
}

/// Run the demo as its flags say.
pub async fn run<R: Runtime + Default>(args: Args) -> std::io::Result<()> {
    match args.url.clone() {
        Some(url) => interactive::<R>(url, args).await,
        None => scenario::<R>(args).await,
    }
}

/// `--help`'s answer: the usage, on stdout.
const HELP: &str = "--help";

/// Parse the process's flags, or print the usage and exit (`--help`: to stdout, status 0).
pub fn args_or_exit() -> Args {
    match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message == HELP => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_errors() {
        let a = Args::parse(
            "--url ws://127.0.0.1:9/ws --room 3 --user 4 --key k --json --reconnect-initial-ms 200 --max-attempts 5"
                .split(' ')
                .map(String::from),
        )
        .unwrap();
        assert_eq!(a.url.as_deref(), Some("ws://127.0.0.1:9/ws"));
        assert_eq!((a.room, a.user, a.json), (3, 4, true));
        assert_eq!(a.policy().initial, Duration::from_millis(200));
        assert_eq!(a.policy().max_attempts, Some(5));
        assert!(Args::parse(["--room".to_string(), "x".into()]).is_err());
        assert!(Args::parse(["--bogus".to_string()]).is_err());
        let sio = Args::parse(
            "--vendor socketio --url http://127.0.0.1:3000 --channel chat --auth {\"token\":\"t\"}"
                .split(' ')
                .map(String::from),
        )
        .unwrap();
        assert_eq!(
            (sio.vendor.as_str(), sio.channel.as_str()),
            ("socketio", "chat")
        );
        assert_eq!(sio.auth, Some(json!({"token": "t"})));
        assert!(Args::parse(["--vendor".to_string(), "xmpp".into()]).is_err());
        assert!(
            Args::parse(["--vendor".to_string(), "mqtt".into()]).is_err(),
            "no embedded MQTT scenario: --url is needed"
        );
    }

    #[test]
    fn json_events_use_the_documented_names() {
        let e = Event::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(750),
            cause: Cause::ConnectTimeout,
        };
        assert_eq!(
            event_json(&e).unwrap(),
            json!({"event": "reconnecting", "attempt": 2, "delay_ms": 750, "cause": "connect timeout"})
        );
        let e = Event::Error(Error::Protocol(ProtocolError::InvalidUtf8));
        assert_eq!(event_json(&e).unwrap()["kind"], "invalid_utf8");
    }
}
