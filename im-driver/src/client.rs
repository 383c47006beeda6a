//! The handle business code holds, and the stream of events it reads.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use im_proto::{
    Endpoint, Event, OutgoingMessage, Protocol, SendError, SendId, State, SubscribeError,
    SwitchError,
};
use serde::Serialize;

use crate::driver::{Shared, Source};
use crate::runtime::Runtime;

/// A connection to a messaging vendor. Cheap to clone; all clones drive the same connection.
/// When the last clone is dropped the client closes as if [`close`](Client::close) was called.
pub struct Client<R: Runtime> {
    shared: Arc<Shared<R>>,
}

// The clones are counted in `Shared` (not by a second `Arc` around it, one more allocation
// per idle client), since the driver and the reader hold `Shared` too.
impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        self.shared.add_handle();
        Client {
            shared: self.shared.clone(),
        }
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
        if self.shared.drop_handle() {
            self.shared.command(|core, now| core.close(now));
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Client")
            .field(&self.shared().lock().core)
            .finish()
    }
}

/// `send_json` refused the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendJsonError {
    #[error("cannot serialize the message: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl<R: Runtime> Client<R> {
    pub(crate) fn new(shared: Arc<Shared<R>>) -> Self {
        Client { shared }
    }

    fn shared(&self) -> &Arc<Shared<R>> {
        &self.shared
    }

    /// Queue a message; it goes out as soon as the connection is ready, in order. The returned
    /// id reappears in `Sent`, `Acked` or `Undelivered`.
    pub fn send(&self, message: OutgoingMessage) -> Result<SendId, SendError> {
        self.shared()
            .command_on(|conn, now| conn.send(now, message))
    }

    pub fn send_text(
        &self,
        channel: impl Into<String>,
        text: impl Into<im_proto::Text>,
    ) -> Result<SendId, SendError> {
        self.send(OutgoingMessage::text(channel, text))
    }

    pub fn send_json<T: Serialize + ?Sized>(
        &self,
        channel: impl Into<String>,
        value: &T,
    ) -> Result<SendId, SendJsonError> {
        Ok(self.send(OutgoingMessage::json(channel, value)?)?)
    }

    /// Join a channel, now and after every reconnect.
    pub fn subscribe(&self, channel: &str) -> Result<(), SubscribeError> {
        self.shared()
            .command(|core, now| core.subscribe(now, channel))
    }

    /// Leave a channel. Returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str) -> bool {
        self.shared()
            .command(|core, now| core.unsubscribe(now, channel))
    }

    /// Tell the client the network is back (skip the rest of a backoff, probe a live link).
    pub fn network_online(&self) {
        self.shared().command(|core, now| core.network_online(now));
    }

    /// Move to another vendor while running; subscriptions, the outbox and the event stream stay.
    pub fn switch_protocol(
        &self,
        protocol: impl Protocol,
        endpoints: Vec<Endpoint>,
    ) -> Result<(), SwitchError> {
        let vendor = protocol.name();
        self.shared()
            .command(|core, now| core.switch_protocol(now, Box::new(protocol), endpoints))?;
        self.shared().span().record("vendor", vendor);
        Ok(())
    }

    /// This client's id in the process (1, 2, … in the order clients were built): the `id`
    /// field of its tracing span, so its log lines can be found among a thousand clients'.
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    pub fn state(&self) -> State {
        self.shared().lock().core.state()
    }

    /// Close for good and wait until the connection is shut and the driver task has ended.
    /// Messages never delivered are reported as `Undelivered` events before `Closed`.
    pub async fn close(&self) {
        self.shared().command(|core, now| core.close(now));
        self.shared().finished().await;
    }

    /// Whether the driver task has ended.
    pub fn is_finished(&self) -> bool {
        self.shared().is_finished()
    }
}

/// The events of one client, in order. Ends after [`Event::Closed`].
///
/// Read them, or drop this: events wait for a reader, and once
/// [`event_capacity`](crate::ClientBuilder::event_capacity) of them do, the client stops
/// reading the socket and holds new messages in the outbox (Q7) until they are read. Dropped,
/// events are discarded and nothing waits on them.
///
/// [`recv`](Events::recv) is the fast path: a reader waiting in it reads the socket itself when
/// a message arrives, with no hand-over between tasks. Read as a [`Stream`], events are read by
/// the driver task while the reader waits (a `Stream` cannot tell a reader that gave up
/// waiting from one that waits on).
pub struct Events {
    source: Arc<dyn Source>,
    /// The socket's waker for the reads this reader makes: the same shared state, kept here
    /// (outside it) so that a read takes no count of it.
    socket: Waker,
    /// The events taken and not yet returned, in order.
    batch: VecDeque<Event>,
    /// Whether the taken batch was large: its buffer is kept for the next one (a busy stream
    /// would otherwise regrow one per batch), while after a small batch it is given back, so
    /// an idle connection keeps none.
    busy: bool,
}

/// Batches of at most this many events give their buffer back once read.
const QUIET_BATCH: usize = 4;

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("buffered", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl Events {
    pub(crate) fn new<R: Runtime>(shared: Arc<Shared<R>>) -> Self {
        Events {
            socket: shared.socket_waker(),
            source: shared,
            batch: VecDeque::new(),
            busy: false,
        }
    }

    /// The next event, or `None` once the client has closed and everything was read.
    ///
    /// Cancel-safe: an event is never lost when the returned future is dropped.
    pub fn recv(&mut self) -> Recv<'_> {
        Recv {
            events: self,
            waiting: false,
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, park: bool) -> Poll<Option<Event>> {
        if self.batch.is_empty() {
            match self
                .source
                .poll_take(&self.socket, &mut self.batch, cx, park)
            {
                Poll::Ready(true) => self.busy = self.batch.len() > QUIET_BATCH,
                Poll::Ready(false) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let event = self.batch.pop_front();
        if self.batch.is_empty() && !self.busy {
            // A read batch is not kept for the rest of an idle connection's life.
            self.batch = VecDeque::new();
        }
        Poll::Ready(event)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.source.drop_reader();
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx, false)
    }
}

/// The future of [`Events::recv`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a> {
    events: &'a mut Events,
    /// The last poll left the reader waiting (parked for the socket's wake-ups).
    waiting: bool,
}

impl Future for Recv<'_> {
    type Output = Option<Event>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let poll = self.events.poll_event(cx, true);
        self.waiting = poll.is_pending();
        poll
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        if self.waiting {
            // Dropped while waiting: the socket goes back to the driver task.
            self.events.source.abandon();
        }
    }
}
