//! What the chat demos share, whatever the runtime: command-line flags, and how events are
//! narrated (human, timestamped) or printed (`--json`, one object per line).

use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_util::StreamExt;
use im_driver::{Client, ClientBuilder, Runtime};
use im_proto::{
    Body, Cause, CloseReason, Event, LiveChat, ProtocolError, ReconnectPolicy, ReportedError,
};
use serde_json::{json, Value};

use crate::LiveChatServer;

/// The demo's flags.
#[derive(Clone, Debug, Default, clap::Parser)]
#[command(
    version,
    about = "The im demo: an embedded livechat server, two users chatting, a server restart \
             survived, a kick. Ends by itself. To chat with your own server: \
             cargo run -p im-tokio --example chat -- --help"
)]
pub struct Args {
    /// Print one JSON object per event instead of the narration.
    #[arg(long)]
    pub json: bool,
    /// The runtime the clients run on.
    #[arg(long, value_enum, default_value_t = RuntimeName::Tokio)]
    pub runtime: RuntimeName,
}

/// The runtimes the demo can run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeName {
    #[default]
    Tokio,
    AsyncStd,
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
    body.decode::<Value>()
        .ok()
        .or_else(|| body.as_text().map(|text| json!(text)))
        .unwrap_or_else(|| json!(body.as_bytes()))
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
fn error_kind(error: &ReportedError) -> (&'static str, String) {
    let kind = match error {
        ReportedError::Protocol(ProtocolError::Malformed(_)) => "malformed",
        ReportedError::Protocol(ProtocolError::InvalidUtf8) => "invalid_utf8",
        ReportedError::Protocol(ProtocolError::UnexpectedFrame(_)) => "unexpected_frame",
        ReportedError::Protocol(ProtocolError::TooLarge { .. }) => "too_large",
        ReportedError::Protocol(ProtocolError::Violation(_)) => "violation",
        ReportedError::Protocol(ProtocolError::AuthFailed(_)) => "auth_failed",
        ReportedError::Protocol(ProtocolError::Server(_)) => "server",
        ReportedError::Subscribe { .. } => "subscribe",
        _ => "other",
    };
    (kind, error.to_string())
}

/// One line of narration for an event, or `None` for the quiet ones (sent, acked).
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Connected { endpoint, .. } => format!("connected to {endpoint}"),
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
        Event::Connected { endpoint, .. } => {
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
        R::default()
            .spawn(async move {
                while let Some(event) = events.recv().await {
                    narrator.event(name, &event);
                    let _ = tx.try_send(event);
                }
            })
            .expect("the demo runs inside its runtime");
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

fn builder<R: Runtime + Default>(url: &str, user: u64) -> ClientBuilder<R> {
    Client::<R>::builder()
        .endpoint(url)
        .name(format!("user-{user}"))
        .reconnect(
            ReconnectPolicy::default()
                .initial(Duration::from_millis(300))
                .max_delay(Duration::from_secs(2)),
        )
        .protocol(LiveChat::new(1, user, KEY))
}

/// The embedded scenario: chat, restart, kick. Narrated; exits non-zero if a step fails.
pub async fn scenario<R: Runtime + Default>(args: Args) -> std::io::Result<()> {
    let narrator: &'static Narrator = Box::leak(Box::new(Narrator::new(args.json)));
    let mut server = LiveChatServer::start(KEY)?;
    narrator.say(&format!(
        "embedded livechat server listening on {}",
        server.url()
    ));

    let mut alice = User::start(narrator, "alice", builder::<R>(&server.url(), 1));
    let mut bob = User::start(narrator, "bob", builder::<R>(&server.url(), 2));
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
    let mut alice_phone = User::start(narrator, "alice'", builder::<R>(&server.url(), 1));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_errors() {
        use clap::Parser;
        let a = Args::try_parse_from(["demo", "--json", "--runtime", "async-std"]).unwrap();
        assert!(a.json);
        assert_eq!(a.runtime, RuntimeName::AsyncStd);
        assert_eq!(
            Args::try_parse_from(["demo"]).unwrap().runtime,
            RuntimeName::Tokio
        );
        assert!(Args::try_parse_from(["demo", "--runtime", "gevent"]).is_err());
        assert!(Args::try_parse_from(["demo", "--bogus"]).is_err());
        let version = Args::try_parse_from(["demo", "--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
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
        let e = Event::Error(ReportedError::Protocol(ProtocolError::InvalidUtf8));
        assert_eq!(event_json(&e).unwrap()["kind"], "invalid_utf8");
    }
}
