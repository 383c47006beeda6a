//! The connection's state under one lock, and the one synchronous step every party runs on it.
//!
//! [`Conn::pump`] carries the core's outputs out (frames written, connects started, events
//! queued for the reader) and, when asked, feeds the core what the socket has. It never waits:
//! a write the socket cannot take is held and finished by a later pump, a connect is a future
//! only the driver task polls. So the driver task, the reader and a command (a `send` writes
//! its frame from the caller's task) all run the same step, whoever holds the lock.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use im_proto::Instant;

use futures_core::Stream;
use futures_util::Sink;
use im_proto::{
    ConnId, Event, OutgoingMessage, Output, SendError, SendId, TransportError, TransportEvent,
};
use tracing::debug;
use tungstenite::Message;

use crate::dial::{self, Dialer};
use crate::owner::{HandOff, Owner};
use crate::runtime::{AsyncTimer, BoxFuture, Runtime};

/// Opening a socket: the socket, or what to tell the core instead (a failure, a refusal).
type Connecting<W> = BoxFuture<Result<W, TransportEvent>>;

pub(crate) enum Link<R: Runtime> {
    None,
    Connecting(ConnId, Connecting<R::Ws>),
    Open(ConnId, R::Ws),
}

impl<R: Runtime> Link<R> {
    fn id(&self) -> Option<ConnId> {
        match self {
            Link::None => None,
            Link::Connecting(id, _) | Link::Open(id, _) => Some(*id),
        }
    }
}

/// A socket being shut: its close frame goes out, bounded by the write timeout, then it is
/// dropped.
struct Closing<W> {
    ws: W,
    close: Option<Message>,
    deadline: Instant,
}

/// Frames fed to the core per pump at most, so timers and commands are never starved.
const READ_BATCH: usize = 256;

/// What a pump did that someone else must act on.
#[derive(Default)]
#[must_use]
pub(crate) struct Pumped {
    /// Events were queued: the reader is woken.
    pub events: bool,
    /// Work only the driver task does was started: a connect to poll, a stalled write or a
    /// close to time.
    pub for_driver: bool,
    /// A connect was started.
    pub connect: bool,
}

pub(crate) struct Conn<R: Runtime> {
    pub core: im_proto::Client,
    pub runtime: R,
    pub link: Link<R>,
    /// Inline, cloned into each connect (rare): one allocation fewer per idle connection.
    dialer: Dialer,
    /// Events for the reader, who takes them all at once. While `capacity` or more wait, the
    /// socket is not read (backpressure to the server) but timers keep running.
    pub events: VecDeque<Event>,
    /// 32 bits, packed with the flags beside it: 8 bytes fewer in every client, and four
    /// billion events waiting would be past any memory anyway.
    capacity: u32,
    /// The reader dropped its `Events`: events are discarded, the socket always read.
    reader_gone: bool,
    /// Whether the socket is read (false while the reader is `capacity` behind).
    reading: bool,
    /// A frame the socket could not take yet; the outputs behind it wait in the core. Boxed:
    /// rare, and every idle connection would carry room for one.
    held: Option<Box<Message>>,
    /// While a write is incomplete: when the link counts as stalled.
    stalled_at: Option<Instant>,
    /// Boxed: a socket is large, and an idle connection would carry room for a second one.
    closing: Option<Box<Closing<R::Ws>>>,
    write_timeout: Duration,
    /// The driver's timer, made once and re-armed, and when it fires (`None`: not armed). A
    /// command that makes an earlier deadline wakes the driver. Here rather than in the
    /// driver's future, which must stay small (see `driver::Drive`).
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    armed: Option<Instant>,
    /// The reader took a batch with frames left in the socket: if it has not read again in
    /// time, the driver reads for it.
    hand_off: HandOff,
    /// The driver task has ended; what is in `events` is all there will be.
    pub finished: bool,
    /// Q5: the durable store, when the client has one. Boxed: one pointer in every client.
    #[cfg(feature = "store")]
    pub durable: Option<Box<crate::durable::Durable>>,
}

impl<R: Runtime> Conn<R> {
    pub fn new(
        runtime: R,
        core: im_proto::Client,
        dialer: Dialer,
        capacity: usize,
        write_timeout: Duration,
    ) -> Self {
        Conn {
            core,
            runtime,
            link: Link::None,
            dialer,
            events: VecDeque::new(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            reader_gone: false,
            reading: true,
            held: None,
            stalled_at: None,
            closing: None,
            write_timeout,
            timer: None,
            armed: None,
            hand_off: HandOff::default(),
            finished: false,
            #[cfg(feature = "store")]
            durable: None,
        }
    }

    // ----- getters -----

    /// How many events may wait for the reader before the socket is no longer read.
    fn capacity(&self) -> usize {
        usize::try_from(self.capacity).unwrap_or(usize::MAX)
    }

    /// The earliest instant the driver must be awake at.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.core.poll_timeout(),
            self.stalled_at,
            self.closing.as_ref().map(|c| c.deadline),
            self.hand_off.deadline(),
            self.store_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    #[cfg(feature = "store")]
    fn store_deadline(&self) -> Option<Instant> {
        self.durable.as_ref().and_then(|d| d.deadline())
    }

    #[cfg(not(feature = "store"))]
    fn store_deadline(&self) -> Option<Instant> {
        None
    }

    /// Whether a step run outside the driver task (a command's, a reader's) left it work: what
    /// the step started for it, the end of the client, or a deadline earlier than its timer.
    pub fn needs_driver(&self, pumped: &Pumped) -> bool {
        pumped.for_driver || self.core.is_closed() || self.needs_earlier_timer()
    }

    fn needs_earlier_timer(&self) -> bool {
        match (self.next_deadline(), self.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Arm the driver's timer for the next deadline, and poll it. Returns whether it fired (the
    /// driver takes another turn).
    ///
    /// Re-armed for a later deadline too: left early, it woke the driver for nothing once per
    /// heartbeat (the heartbeat arms the dead-link deadline, the pong moves it past the next
    /// heartbeat), one idle turn in three (docs/PERFORMANCE.md). The deadlines move
    /// once per batch of frames (they share an instant), and a runtime's timer moves later
    /// cheaply: tokio extends its entry in place, async-io re-inserts it, and the browser's
    /// keeps its `setTimeout` and sets another when that one fires early.
    pub fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.next_deadline() else {
            self.armed = None;
            return false;
        };
        if self.armed != Some(at) {
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(self.runtime.new_timer(at)),
            }
            self.armed = Some(at);
        }
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        if fired {
            self.armed = None;
        }
        fired
    }

    /// Nothing is left to do: the core closed and every socket is gone.
    pub fn is_done(&self) -> bool {
        self.core.is_closed() && matches!(self.link, Link::None) && self.closing.is_none()
    }

    /// The reader took a batch and frames are left in the socket: it has a moment to read them
    /// itself ([`HandOff`]). Returns whether the driver must be woken (to arm its timer for
    /// that).
    pub fn hand_off_later(&mut self, now: Instant) -> bool {
        self.hand_off.reader_took_batch(now);
        self.needs_earlier_timer()
    }

    /// Whether the driver leaves the socket to a reader that took a batch a moment ago.
    pub fn defers_reading(&mut self, now: Instant) -> bool {
        self.hand_off.defers_driver(now)
    }

    /// Whether the socket is open and read (not held back for a reader that is behind).
    pub fn is_reading(&self) -> bool {
        self.reading && matches!(self.link, Link::Open(..))
    }

    // ----- the driver task's part -----

    /// Poll the connect in progress (only the driver task does, with its own waker).
    pub fn poll_connecting(&mut self, now: Instant, cx: &mut Context<'_>, owner: &Owner) {
        let Link::Connecting(conn, opening) = &mut self.link else {
            return;
        };
        let conn = *conn;
        match opening.as_mut().poll(cx) {
            Poll::Pending => {}
            Poll::Ready(Ok(ws)) => {
                debug!(protocol = self.core.protocol_name(), %conn, "open");
                self.link = Link::Open(conn, ws);
                owner.set_socket_ready();
                self.core
                    .handle_transport(now, conn, TransportEvent::Opened);
            }
            Poll::Ready(Err(event)) => {
                debug!(protocol = self.core.protocol_name(), %conn, ?event, "connect failed");
                self.link = Link::None;
                self.core.handle_transport(now, conn, event);
            }
        }
    }

    /// Drop every socket: the driver is ending.
    pub fn shut(&mut self) {
        // The file is released with the client's end, not with the last handle to it.
        #[cfg(feature = "store")]
        if let Some(mut durable) = self.durable.take() {
            durable.close(self.runtime.now());
        }
        self.drop_link();
        self.closing = None;
        self.timer = None;
        self.armed = None;
        self.finished = true;
    }

    // ----- the step everyone runs -----

    /// Carry out the core's outputs and, with `read`, feed it what the socket has (when the
    /// socket's waker said so). Socket operations are polled with the socket's waker.
    pub fn pump(&mut self, now: Instant, read: bool, owner: &Owner, socket: &Waker) -> Pumped {
        let mut cx = Context::from_waker(socket);
        let mut pumped = Pumped::default();
        self.progress_close(now, &mut cx);
        if !self.unblock_write(now, &mut cx) {
            // The frames behind the held one wait in the core; nothing is read meanwhile (the
            // core's queue of outputs would grow with no one taking them).
            pumped.for_driver = true;
            return pumped;
        }
        if read {
            self.read(now, owner, &mut cx);
        }
        while self.drain(now, &mut cx, &mut pumped) {
            if self.stalled_at.is_some() {
                pumped.for_driver = true;
                break;
            }
        }
        #[cfg(feature = "store")]
        if let Some(durable) = &mut self.durable {
            durable.settle(now);
        }
        pumped
    }

    /// Q1, Q5: hand `message` to the core, through the durable store when there is one.
    pub fn send(&mut self, now: Instant, message: OutgoingMessage) -> Result<SendId, SendError> {
        #[cfg(feature = "store")]
        if let Some(durable) = &mut self.durable {
            return durable.send(&mut self.core, now, message);
        }
        self.core.send(now, message)
    }

    /// Take what the reader has not: every queued event, in exchange for `empty` (the reader's
    /// spent buffer, reused). Reading resumes if it was held back.
    pub fn take_events(&mut self, now: Instant, empty: &mut VecDeque<Event>) {
        debug_assert!(empty.is_empty());
        std::mem::swap(&mut self.events, empty);
        self.watch_reader(now);
    }

    /// The reader is gone: nothing is queued for it any more.
    pub fn drop_reader(&mut self, now: Instant) {
        self.reader_gone = true;
        self.hand_off.read();
        self.events = VecDeque::new();
        self.watch_reader(now);
    }

    /// Feed the core the frames the socket has buffered, up to the room left for events.
    fn read(&mut self, now: Instant, owner: &Owner, cx: &mut Context<'_>) {
        if !self.is_reading() || !owner.take_socket_ready() {
            return;
        }
        // Whoever reads now takes over what was left for the reader.
        self.hand_off.read();
        let room = self.capacity().saturating_sub(self.events.len());
        let mut budget = if self.reader_gone {
            READ_BATCH
        } else {
            READ_BATCH.min(room).max(1)
        };
        while let Link::Open(conn, ws) = &mut self.link {
            let conn = *conn;
            // When nothing is buffered, this poll is the one that asks to be woken.
            let next = match Pin::new(ws).poll_next(cx) {
                Poll::Pending => return,
                Poll::Ready(next) => next,
            };
            let Some(event) = dial::to_event(next) else {
                continue;
            };
            let lost = matches!(
                event,
                TransportEvent::Closed { .. } | TransportEvent::Failed(_)
            );
            let rejected = matches!(event, TransportEvent::Rejected(_));
            self.core.handle_transport(now, conn, event);
            if lost {
                debug!(protocol = self.core.protocol_name(), %conn, "connection lost");
                self.drop_link();
                return;
            }
            if rejected {
                // The error is reported; the stream is fused after it, and RFC 6455 §8.1
                // requires failing the connection anyway.
                self.fail(now, conn, dial::fused());
                return;
            }
            budget -= 1;
            if budget == 0 {
                // More may be buffered behind it.
                owner.set_socket_ready();
                return;
            }
        }
    }

    /// Carry out the core's outputs, in order, until it has none or a write is held. Returns
    /// whether there were any.
    fn drain(&mut self, now: Instant, cx: &mut Context<'_>, pumped: &mut Pumped) -> bool {
        let mut any = false;
        let mut wrote = false;
        while self.held.is_none() {
            // The events before the next instruction, in one move rather than one each.
            self.take_core_events(pumped);
            let output = self.core.poll_output();
            any |= !matches!(output, Output::Timeout(_));
            match output {
                // Drained: the deadline is asked for again when the driver arms its timer.
                Output::Timeout(_) => break,
                Output::Connect {
                    conn,
                    endpoint,
                    subprotocols,
                } => {
                    debug!(protocol = self.core.protocol_name(), %conn, %endpoint, "connecting");
                    let dialer = self.dialer.clone();
                    let runtime = self.runtime.clone();
                    let open = async move { dialer.open(&runtime, &endpoint, subprotocols).await };
                    self.link = Link::Connecting(conn, Box::pin(open));
                    pumped.for_driver = true;
                    pumped.connect = true;
                }
                Output::Transmit { conn, frame } => {
                    if self.link.id() == Some(conn) {
                        self.write(now, cx, dial::to_message(frame));
                        wrote = true;
                    }
                }
                Output::Disconnect { conn, code, reason } => {
                    if self.link.id() == Some(conn) {
                        let protocol = self.core.protocol_name();
                        debug!(protocol, %conn, code, %reason, "disconnecting");
                        if let Link::Open(_, ws) = std::mem::replace(&mut self.link, Link::None) {
                            self.closing = Some(Box::new(Closing {
                                ws,
                                close: Some(dial::close_frame(code, reason)),
                                deadline: now + self.write_timeout,
                            }));
                            self.progress_close(now, cx);
                            pumped.for_driver |= self.closing.is_some();
                        }
                        self.held = None;
                        self.stalled_at = None;
                        wrote = false;
                    }
                }
                Output::Event(event) => {
                    #[cfg(feature = "store")]
                    if let Some(durable) = &mut self.durable {
                        durable.note([&event]);
                    }
                    self.deliver(event, pumped)
                }
            }
        }
        if wrote {
            self.flush(now, cx);
        }
        if self.watch_reader(now) {
            any = true;
        }
        any
    }

    /// Move the core's events before its next instruction to the reader's queue.
    fn take_core_events(&mut self, pumped: &mut Pumped) {
        if self.reader_gone {
            let mut unread = VecDeque::new();
            self.core.take_events(&mut unread);
            #[cfg(feature = "store")]
            if let Some(durable) = &mut self.durable {
                durable.note(&unread);
            }
            return;
        }
        let start = self.events.len();
        if self.core.take_events(&mut self.events) == 0 {
            return;
        }
        #[cfg(feature = "store")]
        if let Some(durable) = &mut self.durable {
            durable.note(self.events.range(start..));
        }
        if self.events.len() > self.capacity() {
            // Past capacity, the events go one by one (heartbeat reports may be skipped).
            for event in self.events.split_off(start) {
                self.deliver(event, pumped);
            }
        } else {
            pumped.events = true;
        }
    }

    /// Queue one event for the reader.
    fn deliver(&mut self, event: Event, pumped: &mut Pumped) {
        if self.reader_gone {
            return;
        }
        // A reader that is behind gets the next heartbeat report, not every one.
        if matches!(event, Event::Heartbeat { .. }) && self.events.len() >= self.capacity() {
            return;
        }
        self.events.push_back(event);
        pumped.events = true;
    }

    /// Hand one frame to the socket; one the socket cannot take yet is held.
    fn write(&mut self, now: Instant, cx: &mut Context<'_>, message: Message) {
        let Link::Open(conn, ws) = &mut self.link else {
            return;
        };
        let conn = *conn;
        let result = match Pin::new(&mut *ws).poll_ready(cx) {
            Poll::Ready(Ok(())) => Pin::new(ws).start_send(message),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => {
                self.held = Some(Box::new(message));
                self.stalled_at.get_or_insert(now + self.write_timeout);
                return;
            }
        };
        if let Err(e) = result {
            self.fail(now, conn, dial::classify(&e));
        }
    }

    /// Push what was written out of the socket's buffer.
    fn flush(&mut self, now: Instant, cx: &mut Context<'_>) {
        let Link::Open(conn, ws) = &mut self.link else {
            return;
        };
        let conn = *conn;
        match Pin::new(ws).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                if self.held.is_none() {
                    self.stalled_at = None;
                }
            }
            Poll::Ready(Err(e)) => self.fail(now, conn, dial::classify(&e)),
            Poll::Pending => {
                self.stalled_at.get_or_insert(now + self.write_timeout);
            }
        }
    }

    /// Finish a stalled write if the socket has room now. Returns whether writing is free
    /// again; a write stalled past the write timeout fails the link.
    fn unblock_write(&mut self, now: Instant, cx: &mut Context<'_>) -> bool {
        let Some(stalled_at) = self.stalled_at else {
            return true;
        };
        let Some(conn) = self.link.id() else {
            self.held = None;
            self.stalled_at = None;
            return true;
        };
        if let Some(message) = self.held.take() {
            self.write(now, cx, *message);
            if self.held.is_some() {
                return self.give_up_if_stalled(now, conn, stalled_at);
            }
        }
        self.flush(now, cx);
        if self.stalled_at.is_some() {
            return self.give_up_if_stalled(now, conn, stalled_at);
        }
        true
    }

    fn give_up_if_stalled(&mut self, now: Instant, conn: ConnId, stalled_at: Instant) -> bool {
        if now < stalled_at {
            return false;
        }
        self.fail(now, conn, TransportError::WriteStalled(self.write_timeout));
        true
    }

    /// Move the close frame of a socket being shut along; drop the socket once it is out or
    /// its time is up.
    fn progress_close(&mut self, now: Instant, cx: &mut Context<'_>) {
        let Some(closing) = &mut self.closing else {
            return;
        };
        let done = now >= closing.deadline || {
            let ws = &mut closing.ws;
            match closing.close.take() {
                Some(close) => match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        Pin::new(&mut *ws).start_send(close).is_err()
                            || Pin::new(ws).poll_flush(cx).is_ready()
                    }
                    Poll::Ready(Err(_)) => true,
                    Poll::Pending => {
                        closing.close = Some(close);
                        false
                    }
                },
                None => Pin::new(ws).poll_flush(cx).is_ready(),
            }
        };
        if done {
            self.closing = None;
        }
    }

    /// The link failed: the core is told, the socket dropped.
    fn fail(&mut self, now: Instant, conn: ConnId, error: TransportError) {
        debug!(protocol = self.core.protocol_name(), %conn, %error, "link failed");
        self.drop_link();
        self.core
            .handle_transport(now, conn, TransportEvent::Failed(error));
    }

    fn drop_link(&mut self) {
        self.link = Link::None;
        self.held = None;
        self.stalled_at = None;
    }

    /// Backpressure bookkeeping: tell the core when the socket is not read (its silence then
    /// proves nothing), and close the client if the reader stays away while lifecycle events
    /// keep coming: the queue is bounded too. Returns whether it closed the client.
    fn watch_reader(&mut self, now: Instant) -> bool {
        let reading = self.reader_gone || self.events.len() < self.capacity();
        if reading != self.reading {
            self.reading = reading;
            self.core.set_reading(now, reading);
        }
        let overflow = self.capacity().saturating_mul(4).max(1_024);
        if self.events.len() >= overflow && !self.core.is_closed() {
            let pending = self.events.len();
            self.core
                .close_with(now, im_proto::CloseReason::EventsOverflow { pending });
            return true;
        }
        false
    }
}
