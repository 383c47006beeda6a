//! JetStream, NATS's persistence layer, spoken over the same client protocol: publishes the
//! stream acknowledges, and a durable consumer per subscription that replays what the client
//! missed.
//!
//! - **Publish.** `HPUB subject <inbox>.p<id>` with a `Nats-Msg-Id` header carrying the
//!   message's idempotency key (Q3). The stream answers on the inbox with `{"stream","seq"}`:
//!   `Acked`. It drops a repeat of a key within its duplicate window (2 minutes by default) and
//!   still acks it, so a retransmission after a reconnect or a restart (Q5) is stored once. A
//!   refusal asking again cannot change (any API error but 408 and 503: a message over the
//!   stream's size limit, say) ends the message at once, `Undelivered` with the stream's reason
//!   (Q6); a transient one (no leader, no stream listening yet) or an unreadable answer is
//!   reported and the core's ack timeout sends the message again.
//! - **Subscribe.** Each subscribed subject gets a durable push consumer with explicit acks,
//!   named from the client's consumer name and the subject, delivering to `_IM.<durable>`. The
//!   client subscribes to that subject and asks the server to create the consumer, which is a
//!   no-op when it exists: a consumer survives reconnects, failovers (an R3 stream keeps it on
//!   three nodes) and restarts of the client, and replays from where it was acked.
//! - **Ack after hand-off.** A delivered message is acked (`+ACK` to its `$JS.ACK…` reply
//!   subject) right after its event is queued for the user. One whose ack was lost with a link
//!   is delivered again after `ack_wait`; the client remembers the last
//!   [`SEEN_CAPACITY`] deliveries it handed over and acks such a repeat without handing it over
//!   twice.
//! - **Gaps.** A consumer the server answers with a creation time other than the one it had
//!   before was lost (deleted, or its stream was) and made anew: `ProtocolEvent::Gap`.
//!   JetStream cannot tell a client that retention limits discarded messages it never read;
//!   that is the stream operator's to size.
//! - **Transient refusals** (no JetStream leader during a failover: a 503 status or error) are
//!   retried at each heartbeat; any other refusal is `SubscribeRefused`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

/// How many delivered messages a client remembers to recognise a redelivery it already handed
/// over (a count, so the memory is bounded: about 16 bytes each).
pub const SEEN_CAPACITY: usize = 4096;

/// The longest piece of the subject kept in a consumer's name (the rest is in its hash).
const SUBJECT_IN_NAME: usize = 32;

/// JetStream settings for [`Nats::jetstream`](super::Nats::jetstream): the stream to bind to
/// and how its consumers behave. The stream itself is the operator's (`nats stream add`, with
/// the subjects and the replication it needs); the client creates its own consumers.
#[derive(Clone, Debug)]
pub struct JetStream {
    stream: String,
    consumer: Option<String>,
    ack_wait: Duration,
    deliver_new: bool,
}

impl JetStream {
    /// Bind to the stream named `stream`.
    pub fn new(stream: impl Into<String>) -> Self {
        JetStream {
            stream: stream.into(),
            consumer: None,
            ack_wait: Duration::from_secs(30),
            deliver_new: false,
        }
    }

    /// The name this client's durable consumers start with (default: the client's name). It
    /// is what makes a restarted client find its consumers again: keep it stable, and give
    /// each concurrently running client its own.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// How long the server waits for the ack of a delivered message before delivering it
    /// again (default 30 s, the server's own default). After a lost link the messages that
    /// were in flight come again only after this wait; shorter means sooner, and more repeats
    /// of messages that were merely slow to be acked.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// A consumer created now starts with the next message stored, not with the stream's
    /// first. (An existing consumer always carries on from where it was acked.)
    pub fn deliver_new(mut self) -> Self {
        self.deliver_new = true;
        self
    }
}

/// A reply the server sent to a request of ours, as the inbox suffix names it.
pub(super) enum Reply {
    Publish(u64),
    Consumer(u64),
}

impl Reply {
    pub(super) fn parse(suffix: &str) -> Option<Reply> {
        let (kind, n) = suffix.split_at_checked(1)?;
        let n = n.parse().ok()?;
        match kind {
            "p" => Some(Reply::Publish(n)),
            "c" => Some(Reply::Consumer(n)),
            _ => None,
        }
    }
}

/// The server's answer to a publish or a consumer create, when it is not a success.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    /// Nothing answered, or JetStream is between leaders: worth asking again.
    Transient(String),
    /// A refusal that asking again will not change.
    Final(String),
    /// No JetStream answer (not JSON, or neither a sequence nor a consumer): whether the
    /// request took effect is unknown. A publish is asked again (the stream stores a key once);
    /// a consumer create is refused.
    Unreadable(String),
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct ApiReply {
    error: Option<ApiError>,
    /// A consumer create answer: when the consumer was made.
    created: Option<String>,
    /// A publish ack.
    seq: Option<u64>,
}

/// Read an API answer: `Ok` with the consumer's creation time (publish acks have none), or
/// why it was refused. `status` is the header status of an `HMSG` answer (503: no responders).
pub(super) fn read_reply(status: Option<u16>, payload: &[u8]) -> Result<Option<String>, Refusal> {
    if let Some(status) = status.filter(|s| *s >= 300) {
        let why = format!("JetStream did not answer (status {status})");
        return Err(if matches!(status, 408 | 503) {
            Refusal::Transient(why)
        } else {
            Refusal::Final(why)
        });
    }
    let reply: ApiReply = serde_json::from_slice(payload)
        .map_err(|e| Refusal::Unreadable(format!("JetStream answer unreadable: {e}")))?;
    match reply.error {
        Some(e) if matches!(e.code, 408 | 503) => Err(Refusal::Transient(e.description)),
        Some(e) => Err(Refusal::Final(format!("{} ({})", e.description, e.code))),
        None if reply.seq.is_none() && reply.created.is_none() => Err(Refusal::Unreadable(
            "JetStream answer without a sequence or consumer".into(),
        )),
        None => Ok(reply.created),
    }
}

/// What became of a consumer create request.
pub(super) enum ConsumerAnswer {
    /// The consumer is there; `recreated` when the server made it anew in place of the one it
    /// had before (what that one held is gone).
    Bound {
        channel: String,
        recreated: bool,
    },
    /// Refused for now: asked again at the next heartbeat.
    Later,
    Refused {
        channel: String,
        why: String,
    },
}

/// What a `$JS.ACK…` reply subject says of a delivery.
#[derive(Debug, PartialEq)]
pub(super) struct Delivered<'a> {
    pub consumer: &'a str,
    pub stream_seq: u64,
}

impl<'a> Delivered<'a> {
    /// `$JS.ACK.<stream>.<consumer>.<count>.<sseq>.<cseq>.<time>.<pending>`, or the longer
    /// form with a domain and an account hash in front of the stream (nats-server 2.10+).
    pub(super) fn parse(reply: &'a str) -> Option<Delivered<'a>> {
        let tokens: Vec<&str> = reply.strip_prefix("$JS.ACK.")?.split('.').collect();
        let at = match tokens.len() {
            7 => 0,
            9.. => 2,
            _ => return None,
        };
        // The delivery count (`at + 2`) is checked but not kept: a consumer whose leader moved
        // may deliver again with a count of 1, so only the sequence tells a repeat.
        tokens[at + 2].parse::<u64>().ok()?;
        Some(Delivered {
            consumer: tokens[at + 1],
            stream_seq: tokens[at + 3].parse().ok()?,
        })
    }
}

/// A client's JetStream state: settings, what survives reconnects (consumers' creation times,
/// deliveries handed over), and what belongs to one connection (requests in flight).
#[derive(Debug)]
pub(super) struct Session {
    pub config: JetStream,
    /// Durable name → the creation time the server first gave it (kept across connections).
    created: HashMap<String, String>,
    /// Consumer create requests in flight on this connection: request → (channel, whether a
    /// heartbeat passed since it went out).
    pending: HashMap<u64, (String, bool)>,
    /// Channels whose consumer create was refused for now: asked again at the next heartbeat.
    retry: BTreeSet<String>,
    next_request: u64,
    /// The last deliveries handed over, by (hash of the consumer's name, stream sequence),
    /// oldest first: hashed, so recording one allocates nothing.
    seen: VecDeque<(u64, u64)>,
    seen_set: HashSet<(u64, u64)>,
    /// The last publish refusal reported, so a stream that is down is reported once, not for
    /// every message waiting on it.
    last_refusal: Option<String>,
}

impl Session {
    pub(super) fn new(config: JetStream) -> Self {
        Session {
            config,
            created: HashMap::new(),
            pending: HashMap::new(),
            retry: BTreeSet::new(),
            next_request: 0,
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
            last_refusal: None,
        }
    }

    /// A new connection: requests of the old one will never be answered.
    pub(super) fn on_open(&mut self) {
        self.pending.clear();
        self.retry.clear();
    }

    /// The durable consumer's name for `channel`: the consumer name and the subject with what
    /// a name cannot hold replaced, and a hash of the whole subject so two subjects that read
    /// the same after the replacement stay apart.
    pub(super) fn durable(&self, client_name: &str, channel: &str) -> String {
        let clean = |s: &str, max: usize| -> String {
            s.chars()
                .take(max)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let base = self.config.consumer.as_deref().unwrap_or(client_name);
        format!(
            "{}_{}_{:08x}",
            clean(base, 64),
            clean(channel, SUBJECT_IN_NAME),
            fnv1a(channel.as_bytes()) as u32
        )
    }

    /// The subject a durable's messages are pushed to.
    pub(super) fn deliver_subject(durable: &str) -> String {
        format!("_IM.{durable}")
    }

    /// The operation that creates (or finds) the consumer for `channel`, answered on `inbox`.
    pub(super) fn create_consumer(&mut self, inbox: &str, durable: &str, channel: &str) -> String {
        let n = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        self.pending.insert(n, (channel.to_owned(), false));
        self.retry.remove(channel);
        let stream = &self.config.stream;
        let body = json!({
            "stream_name": stream,
            "config": {
                "durable_name": durable,
                "deliver_subject": Self::deliver_subject(durable),
                "ack_policy": "explicit",
                "ack_wait": u64::try_from(self.config.ack_wait.as_nanos()).unwrap_or(u64::MAX),
                "filter_subject": channel,
                "deliver_policy": if self.config.deliver_new { "new" } else { "all" },
            }
        })
        .to_string();
        format!(
            "PUB $JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable} {inbox}.c{n} {}\r\n{body}\r\n",
            body.len()
        )
    }

    /// The answer to consumer request `n`, or `None` if no such request is in flight.
    pub(super) fn consumer_answer(
        &mut self,
        n: u64,
        client_name: &str,
        answer: Result<Option<String>, Refusal>,
    ) -> Option<ConsumerAnswer> {
        let (channel, _) = self.pending.remove(&n)?;
        Some(match answer {
            Ok(created) => {
                let created = created.unwrap_or_default();
                let before = self
                    .created
                    .insert(self.durable(client_name, &channel), created.clone());
                ConsumerAnswer::Bound {
                    recreated: before.is_some_and(|b| b != created),
                    channel,
                }
            }
            Err(Refusal::Transient(_)) => {
                self.retry.insert(channel);
                ConsumerAnswer::Later
            }
            Err(Refusal::Final(why) | Refusal::Unreadable(why)) => {
                ConsumerAnswer::Refused { channel, why }
            }
        })
    }

    /// At a heartbeat: the channels to ask for again, and forget: those whose last request
    /// was refused for now, and those whose request is still unanswered a heartbeat after it
    /// went out (a JetStream without a leader may not answer at all).
    pub(super) fn take_retries(&mut self) -> Vec<String> {
        let mut again = std::mem::take(&mut self.retry);
        self.pending.retain(|_, (channel, aged)| {
            if *aged {
                again.insert(std::mem::take(channel));
            }
            *aged = true;
            !channel.is_empty()
        });
        again.into_iter().collect()
    }

    /// The user no longer wants `channel`: its consumer stays on the server (a durable one
    /// outlives its subscriber), but nothing more is asked about it on this connection.
    pub(super) fn forget(&mut self, channel: &str) {
        self.retry.remove(channel);
        self.pending.retain(|_, (c, _)| c != channel);
    }

    /// Whether the delivery was handed over before (a redelivery whose ack was lost, whatever
    /// its delivery count says: a consumer's new leader after a failover may count from 1
    /// again); if not, remember it. A stream sequence reaches a consumer once otherwise.
    pub(super) fn already_handed_over(&mut self, d: &Delivered<'_>) -> bool {
        let key = (fnv1a(d.consumer.as_bytes()), d.stream_seq);
        if !self.seen_set.insert(key) {
            return true;
        }
        self.seen.push_back(key);
        if self.seen.len() > SEEN_CAPACITY {
            if let Some(old) = self.seen.pop_front() {
                self.seen_set.remove(&old);
            }
        }
        false
    }

    /// A publish refusal worth telling the user: the first of a run of the same one.
    pub(super) fn report_refusal(&mut self, why: String) -> Option<String> {
        if self.last_refusal.as_ref() == Some(&why) {
            return None;
        }
        self.last_refusal = Some(why.clone());
        Some(why)
    }

    /// A publish was stored: the next refusal is news again.
    pub(super) fn stored(&mut self) {
        self.last_refusal = None;
    }
}

/// FNV-1a, 64 bits: a stable hash (the same in every build and process) for consumer names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_of_both_forms_are_read() {
        let short = Delivered::parse("$JS.ACK.CHAT.me_a.2.17.5.1796611458713760396.0").unwrap();
        assert_eq!(
            short,
            Delivered {
                consumer: "me_a",
                stream_seq: 17
            }
        );
        let long =
            Delivered::parse("$JS.ACK.hub.ACCHASH.CHAT.me_a.1.9.9.179661145871.0.r4nd").unwrap();
        assert_eq!((long.consumer, long.stream_seq), ("me_a", 9));
        assert_eq!(Delivered::parse("$JS.ACK.CHAT.me_a.x.1.1.1.0"), None);
        assert_eq!(Delivered::parse("_INBOX.x"), None);
    }

    #[test]
    fn answers_are_sorted_into_stored_transient_and_final() {
        assert_eq!(read_reply(None, br#"{"stream":"S", "seq":1}"#), Ok(None));
        assert_eq!(
            read_reply(None, br#"{"created":"2026-12-07T02:44:19Z","name":"x"}"#),
            Ok(Some("2026-12-07T02:44:19Z".into()))
        );
        assert!(matches!(
            read_reply(Some(503), b""),
            Err(Refusal::Transient(_))
        ));
        assert!(matches!(
            read_reply(None, br#"{"error":{"code":503,"description":"JetStream system temporarily unavailable"}}"#),
            Err(Refusal::Transient(_))
        ));
        assert!(matches!(
            read_reply(None, br#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#),
            Err(Refusal::Final(why)) if why.contains("stream not found")
        ));
        assert!(matches!(
            read_reply(None, b"{}"),
            Err(Refusal::Unreadable(_))
        ));
        assert!(matches!(
            read_reply(None, b"not json"),
            Err(Refusal::Unreadable(_))
        ));
    }

    #[test]
    fn durable_names_are_valid_stable_and_distinct() {
        let s = Session::new(JetStream::new("CHAT"));
        let a = s.durable("alice phone", "chat.room.1");
        let b = s.durable("alice phone", "chat_room_1");
        assert_ne!(a, b);
        assert_eq!(a, s.durable("alice phone", "chat.room.1"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(a.starts_with("alice_phone_chat_room_1_"));
    }

    #[test]
    fn unanswered_and_refused_requests_are_asked_again_at_the_next_heartbeat_but_one() {
        let mut s = Session::new(JetStream::new("CHAT"));
        s.create_consumer("_INBOX.x", "d1", "chat.a");
        s.create_consumer("_INBOX.x", "d2", "chat.b");
        assert!(matches!(
            s.consumer_answer(1, "me", Err(Refusal::Transient("no leader".into()))),
            Some(ConsumerAnswer::Later)
        ));
        // chat.b was refused for now; chat.a has had no heartbeat yet to be answered in.
        assert_eq!(s.take_retries(), ["chat.b"]);
        assert_eq!(s.take_retries(), ["chat.a"]);
        assert!(s.take_retries().is_empty());
        // An answer to a request given up on changes nothing.
        assert!(s.consumer_answer(0, "me", Ok(Some("t".into()))).is_none());
    }

    #[test]
    fn a_redelivery_already_handed_over_is_recognised_within_the_bound() {
        let mut s = Session::new(JetStream::new("CHAT"));
        let first = |seq| Delivered {
            consumer: "c",
            stream_seq: seq,
        };
        let again = first;
        assert!(!s.already_handed_over(&first(1)));
        assert!(s.already_handed_over(&again(1)));
        // Told by its sequence alone (the delivery count may start again at a new leader).
        assert!(s.already_handed_over(&first(1)));
        // A redelivery of one never handed over (lost in flight) is handed over.
        assert!(!s.already_handed_over(&again(2)));
        for seq in 3..(3 + SEEN_CAPACITY as u64) {
            s.already_handed_over(&first(seq));
        }
        assert_eq!(s.seen.len(), SEEN_CAPACITY);
        assert!(
            !s.already_handed_over(&again(1)),
            "forgotten past the bound"
        );
    }
}
