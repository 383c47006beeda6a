//! The one task per client: plumbing between the core, the socket, the timer and the user.

use std::collections::VecDeque;
use std::future::{self, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use im_proto::{ConnId, Event, Output, TransportEvent};
use tracing::{debug, Instrument};
use tungstenite::{Error as WsError, Message};

use crate::runtime::Runtime;
use crate::transport::{self, Dialer};

/// A wake-up that is never lost: a flag plus the driver's waker.
#[derive(Default)]
pub(crate) struct Wake {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Wake {
    pub fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.set.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Whether the socket may have something for the driver: set by the waker the socket is polled
/// with, cleared when a poll finds nothing. The driver polls the socket only then, not on every
/// wake-up: a read attempt is not free (tungstenite zero-fills its read buffer before each one),
/// and wake-ups from a send or a timer would each have paid one.
struct SocketWake {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for SocketWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// State shared by the handles and the driver task. The core is only ever locked for the
/// duration of a synchronous call, never across an `.await`.
pub(crate) struct Shared {
    core: Mutex<im_proto::Client>,
    /// Wakes the driver after a user command changed the core.
    wake: Wake,
    finished: AtomicBool,
    finished_event: event_listener::Event,
    /// Events still undelivered when the driver ended (the final report, bounded by the outbox):
    /// the event stream yields them after the channel, so `close().await` never waits for the
    /// user to read.
    pub tail: Mutex<VecDeque<Event>>,
    /// The runtime's clock.
    now: fn() -> Instant,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, im_proto::Client> {
        // A panic elsewhere cannot leave the core half-updated in a way that matters more than
        // stopping every client call would.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run a user command against the core with the current time, then wake the driver.
    pub fn command<T>(&self, f: impl FnOnce(&mut im_proto::Client, Instant) -> T) -> T {
        let r = f(&mut self.lock(), (self.now)());
        self.wake.notify();
        r
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Resolves once the driver task has ended.
    pub async fn finished(&self) {
        loop {
            if self.is_finished() {
                return;
            }
            let listener = self.finished_event.listen();
            if self.is_finished() {
                return;
            }
            listener.await;
        }
    }
}

type Timer = Pin<Box<dyn Future<Output = ()> + Send>>;

type Connecting<W> = Pin<Box<dyn Future<Output = Result<W, String>> + Send>>;

enum Link<R: Runtime> {
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

/// What one round of [`Driver::take_outputs`] found.
struct Taken {
    any: bool,
    closed: bool,
    disconnect: Option<(ConnId, u16, String)>,
}

/// What ended a wait.
///
/// Small on purpose: it is moved several times per wake-up, and carrying an opened socket (1.4
/// KB) in it made each move a large copy. A socket that opened is installed before the wait ends.
enum Woke {
    Timer,
    Command,
    /// The connect future completed: `Ok` once the socket is installed as `Link::Open`.
    Opened(Result<(), String>),
    Read(Option<Result<Message, WsError>>),
    Room(bool),
}

/// Events a batch starts with room for when traffic is quiet.
const QUIET_BATCH: usize = 4;

/// Frames fed to the core per wake-up at most, so timers and commands are never starved.
const READ_BATCH: usize = 256;

/// Send a close frame on a socket being dropped, bounded by the write timeout.
async fn send_close<R: Runtime>(mut ws: R::Ws, close: Message, limit: Duration) {
    let _ = within::<R, _>(limit, ws.send(close)).await;
}

/// `f`, unless it takes longer than `limit` (`None`).
async fn within<R: Runtime, F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    let deadline = R::now() + limit;
    match select(pin!(f), pin!(R::sleep_until(deadline))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

pub(crate) struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    /// Shared with the connect futures (and small in an idle task).
    dialer: Arc<Dialer>,
    /// Events go to the reader in batches of at most `batch_size` (a channel message per event
    /// made a chatty server slow); the channel holds four batches.
    events: mpsc::Sender<Vec<Event>>,
    batch_size: usize,
    /// Events waiting for room in the user's channel, already in the batches they will travel
    /// in (the last one still filling), so handing one over moves a `Vec`, not its events.
    /// While they number `capacity` or more, the driver stops reading the socket (backpressure
    /// to the server) but keeps its timers running.
    pending: VecDeque<Vec<Event>>,
    pending_len: usize,
    /// Room a new batch starts with: the largest batch of the current burst, so a burst's
    /// batches are not regrown (that was a `realloc` per few events), and a few events once
    /// traffic is quiet again.
    batch_room: usize,
    capacity: usize,
    events_dropped: bool,
    /// Whether the socket is being read (false while `pending` is at `capacity`).
    reading: bool,
    link: Link<R>,
    write_timeout: Duration,
    /// The armed runtime timer and when it fires. Kept across wake-ups and re-armed only when
    /// the core's next deadline is earlier: a later deadline costs one early wake-up that finds
    /// nothing due, while arming a fresh timer on every wake-up registered one per frame.
    timer: Option<(Instant, Timer)>,
    socket_wake: Arc<SocketWake>,
    /// `socket_wake` as the waker the socket is polled with.
    socket_waker: Waker,
}

impl<R: Runtime> Driver<R> {
    pub fn spawn(
        core: im_proto::Client,
        dialer: Dialer,
        capacity: usize,
        write_timeout: Duration,
    ) -> (Arc<Shared>, mpsc::Receiver<Vec<Event>>) {
        // Four batches in flight (three buffered plus the only sender's slot): about `capacity`
        // events between the driver and the reader.
        let (events, rx) = mpsc::channel(3);
        let span = tracing::info_span!("im", protocol = core.protocol_name());
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            wake: Wake::default(),
            finished: AtomicBool::new(false),
            finished_event: event_listener::Event::new(),
            tail: Mutex::new(VecDeque::new()),
            now: R::now,
        });
        let socket_wake = Arc::new(SocketWake {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let driver = Driver::<R> {
            shared: shared.clone(),
            dialer: Arc::new(dialer),
            events,
            batch_size: capacity.div_ceil(4).max(1),
            pending: VecDeque::new(),
            pending_len: 0,
            batch_room: QUIET_BATCH,
            capacity,
            events_dropped: false,
            reading: true,
            link: Link::None,
            write_timeout,
            timer: None,
            socket_wake: socket_wake.clone(),
            socket_waker: Waker::from(socket_wake),
        };
        R::spawn(driver.run().instrument(span));
        (shared, rx)
    }

    /// The task's future. Not an `async fn`: an `async fn` taking `self` by value keeps two
    /// copies of it in its state (the argument and the binding), which was 1.6 KB of every idle
    /// connection's memory.
    #[allow(clippy::manual_async_fn)] // the point: see above
    fn run(mut self) -> impl Future<Output = ()> + Send {
        async move { self.run_loop().await }
    }

    async fn run_loop(&mut self) {
        let mut frames = Vec::new();
        loop {
            let taken = self.take_outputs(&mut frames);
            if !taken.any {
                if taken.closed {
                    break;
                }
                self.wait().await;
                continue;
            }
            if !frames.is_empty() || taken.disconnect.is_some() {
                // Boxed: an idle driver waits in the small `wait()`; without the box its task
                // would reserve room for the writes' much larger state on every connection.
                Box::pin(self.write(&mut frames, taken.disconnect)).await;
                // Not kept for the rest of an idle connection's life.
                frames = Vec::new();
            }
            self.deliver_ready_events();
            self.watch_reader();
        }
        self.link = Link::None;
        self.timer = None;
        if !self.events_dropped {
            let mut tail = self
                .shared
                .tail
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            tail.extend(self.pending.drain(..).flatten());
        }
        self.events.close_channel();
        self.shared.finished.store(true, Ordering::Release);
        self.shared.finished_event.notify(usize::MAX);
        debug!("driver ended");
    }

    fn input(&self, conn: ConnId, event: TransportEvent) {
        self.shared.lock().handle_transport(R::now(), conn, event);
    }

    /// Take the core's outputs, under one lock, in order: connects and events are acted on at
    /// once, frames collected for one write; a `Disconnect` ends the round (the frames before
    /// it go out first, the outputs after it wait for the next round).
    fn take_outputs(&mut self, frames: &mut Vec<Message>) -> Taken {
        let shared = Arc::clone(&self.shared);
        let mut core = shared.lock();
        let mut taken = Taken {
            any: false,
            closed: false,
            disconnect: None,
        };
        while let Some(output) = core.poll_output() {
            taken.any = true;
            match output {
                Output::Connect {
                    conn,
                    endpoint,
                    subprotocols,
                } => {
                    debug!(%conn, %endpoint, "connecting");
                    let dialer = self.dialer.clone();
                    let open = async move { dialer.open::<R>(&endpoint, subprotocols).await };
                    self.link = Link::Connecting(conn, Box::pin(open));
                }
                Output::Transmit { conn, frame } => {
                    if self.link.id() == Some(conn) {
                        frames.push(transport::to_message(frame));
                    }
                }
                Output::Disconnect { conn, code, reason } => {
                    taken.disconnect = Some((conn, code, reason));
                    break;
                }
                // A reader that is behind gets the next heartbeat report, not every one.
                Output::Event(Event::Heartbeat { .. }) if self.pending_len >= self.capacity => {}
                Output::Event(event) => self.push_event(event),
            }
        }
        taken.closed = core.is_closed();
        taken
    }

    /// Write one round's frames with one flush, then carry out its `Disconnect`, if any.
    async fn write(
        &mut self,
        frames: &mut Vec<Message>,
        disconnect: Option<(ConnId, u16, String)>,
    ) {
        self.flush(frames).await;
        let Some((conn, code, reason)) = disconnect else {
            return;
        };
        if self.link.id() == Some(conn) {
            debug!(%conn, code, %reason, "disconnecting");
            if let Link::Open(_, ws) = std::mem::replace(&mut self.link, Link::None) {
                // Boxed: the socket moves into it, and the write future (boxed and moved on
                // every round that writes) would otherwise carry room for it.
                let close = transport::close_frame(code, reason);
                Box::pin(send_close::<R>(ws, close, self.write_timeout)).await;
            }
        }
    }

    /// Make sure a timer fires no later than `deadline` (and none runs without one).
    fn arm_timer(&mut self, deadline: Option<Instant>) {
        match deadline {
            None => self.timer = None,
            Some(at) => {
                if !matches!(&self.timer, Some((armed, _)) if *armed <= at) {
                    self.timer = Some((at, Box::pin(R::sleep_until(at))));
                }
            }
        }
    }

    /// Queue an event for the reader, in the batch that is filling.
    fn push_event(&mut self, event: Event) {
        self.pending_len += 1;
        if let Some(batch) = self.pending.back_mut() {
            if batch.len() < self.batch_size {
                batch.push(event);
                return;
            }
        }
        let mut batch = Vec::with_capacity(self.batch_room.min(self.batch_size));
        batch.push(event);
        self.pending.push_back(batch);
    }

    /// Backpressure bookkeeping: tell the core when the socket is not read (its silence then
    /// proves nothing), and close the client if the reader stays away while lifecycle events
    /// keep coming: the pending queue is bounded too.
    fn watch_reader(&mut self) {
        let reading = self.pending_len < self.capacity;
        if reading != self.reading {
            self.reading = reading;
            self.shared.lock().set_reading(R::now(), reading);
        }
        let overflow = self.capacity.saturating_mul(4).max(1_024);
        if self.pending_len >= overflow {
            let pending = self.pending_len;
            self.shared
                .lock()
                .close_with(R::now(), im_proto::CloseReason::EventsOverflow { pending });
        }
    }

    /// Write a batch of frames with one flush. A write that cannot complete within the timeout
    /// means the link is stalled: the core is told the transport failed.
    async fn flush(&mut self, batch: &mut Vec<Message>) {
        if batch.is_empty() {
            return;
        }
        let Link::Open(conn, ws) = &mut self.link else {
            batch.clear();
            return;
        };
        let conn = *conn;
        let write = async {
            for message in batch.drain(..) {
                ws.feed(message).await?;
            }
            ws.flush().await
        };
        let failure = match within::<R, _>(self.write_timeout, write).await {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(transport::describe(&e)),
            None => Some("write stalled".to_owned()),
        };
        batch.clear();
        if let Some(error) = failure {
            debug!(%conn, %error, "write failed");
            self.link = Link::None;
            self.input(conn, TransportEvent::Failed(error));
        }
    }

    /// The oldest pending batch, to be handed over.
    fn take_batch(&mut self) -> Option<Vec<Event>> {
        let batch = self.pending.pop_front()?;
        self.pending_len -= batch.len();
        self.batch_room = if batch.len() <= QUIET_BATCH {
            QUIET_BATCH
        } else {
            self.batch_room.max(batch.len())
        };
        Some(batch)
    }

    /// A batch the channel had no room for goes back to the front.
    fn put_back(&mut self, batch: Vec<Event>) {
        self.pending_len += batch.len();
        self.pending.push_front(batch);
    }

    fn drop_events(&mut self) {
        self.events_dropped = true;
        self.pending = VecDeque::new();
        self.pending_len = 0;
    }

    /// Hand over the batches that fit without waiting.
    fn deliver_ready_events(&mut self) {
        if self.events_dropped {
            return;
        }
        while let Some(batch) = self.take_batch() {
            match self.events.try_send(batch) {
                Ok(()) => {}
                Err(e) if e.is_full() => {
                    self.put_back(e.into_inner());
                    return;
                }
                Err(_) => return self.drop_events(),
            }
        }
        // Nothing waits: an idle connection keeps no queue.
        self.pending = VecDeque::new();
    }

    /// Wait for the next thing to happen: a deadline, a user command, the socket, or room for
    /// events; then feed it to the core (the loop drains the core again).
    async fn wait(&mut self) {
        let deadline = self.shared.lock().poll_timeout();
        self.arm_timer(deadline);
        let has_pending = self.pending_len > 0 && !self.events_dropped;
        // In priority order: timers and user commands are never starved by a busy socket.
        let woke = future::poll_fn(|cx| {
            if let Some((_, timer)) = &mut self.timer {
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Timer);
                }
            }
            if self.shared.wake.poll(cx).is_ready() {
                return Poll::Ready(Woke::Command);
            }
            self.socket_wake.task.register(cx.waker());
            let socket = match &mut self.link {
                Link::Connecting(conn, opening) => match opening.as_mut().poll(cx) {
                    Poll::Ready(Ok(ws)) => {
                        self.link = Link::Open(*conn, ws);
                        Poll::Ready(Woke::Opened(Ok(())))
                    }
                    Poll::Ready(Err(error)) => Poll::Ready(Woke::Opened(Err(error))),
                    Poll::Pending => Poll::Pending,
                },
                Link::Open(_, ws)
                    if self.reading && self.socket_wake.ready.swap(false, Ordering::AcqRel) =>
                {
                    let read = ws.poll_next_unpin(&mut Context::from_waker(&self.socket_waker));
                    if read.is_ready() {
                        // More may be buffered behind it.
                        self.socket_wake.ready.store(true, Ordering::Release);
                    }
                    read.map(Woke::Read)
                }
                _ => Poll::Pending,
            };
            if socket.is_ready() {
                return socket;
            }
            if has_pending {
                if let Poll::Ready(r) = self.events.poll_ready(cx) {
                    return Poll::Ready(Woke::Room(r.is_ok()));
                }
            }
            Poll::Pending
        })
        .await;
        if matches!(woke, Woke::Timer) {
            self.timer = None;
        }
        let Some(conn) = self.link.id() else {
            match woke {
                Woke::Timer => self.shared.lock().handle_timeout(R::now()),
                Woke::Room(ok) => self.on_room(ok),
                _ => {}
            }
            return;
        };
        match woke {
            Woke::Timer => self.shared.lock().handle_timeout(R::now()),
            Woke::Command => {}
            Woke::Opened(Ok(())) => {
                debug!(%conn, "open");
                self.socket_wake.ready.store(true, Ordering::Release);
                self.input(conn, TransportEvent::Opened);
            }
            Woke::Opened(Err(error)) => {
                debug!(%conn, %error, "connect failed");
                self.link = Link::None;
                self.input(conn, TransportEvent::Failed(error));
            }
            Woke::Read(read) => self.on_read(conn, read),
            Woke::Room(ok) => self.on_room(ok),
        }
    }

    /// One read completed: feed it, and every frame already buffered behind it (up to the
    /// room left for events), to the core under one lock. Paying the loop once per frame is what
    /// made a chatty server slow.
    fn on_read(&mut self, conn: ConnId, first: Option<Result<Message, WsError>>) {
        let mut read = Some(first);
        let mut core = self.shared.lock();
        let now = R::now();
        let mut budget = READ_BATCH.min(self.capacity.saturating_sub(self.pending_len).max(1));
        while let Some(next) = read.take() {
            let Some(event) = transport::to_event(next) else {
                continue;
            };
            let lost = matches!(
                event,
                TransportEvent::Closed { .. } | TransportEvent::Failed(_)
            );
            let rejected = matches!(event, TransportEvent::Rejected(_));
            core.handle_transport(now, conn, event);
            if lost {
                debug!(%conn, "connection lost");
                self.link = Link::None;
                return;
            }
            if rejected {
                // The error is reported; the stream is fused after it, and RFC 6455 §8.1
                // requires failing the connection anyway.
                self.link = Link::None;
                core.handle_transport(now, conn, TransportEvent::Failed(transport::FUSED.into()));
                return;
            }
            budget -= 1;
            if budget == 0 {
                return;
            }
            if let Link::Open(_, ws) = &mut self.link {
                // Polled with the socket's waker: when nothing is buffered, this poll is the one
                // that asks to be woken, and the next wait does not read again until it is.
                self.socket_wake.ready.store(false, Ordering::Release);
                match ws.poll_next_unpin(&mut Context::from_waker(&self.socket_waker)) {
                    Poll::Ready(next) => {
                        self.socket_wake.ready.store(true, Ordering::Release);
                        read = Some(next);
                    }
                    Poll::Pending => {}
                }
            }
        }
    }

    /// The channel has room again (or its reader is gone: `ok` false).
    fn on_room(&mut self, ok: bool) {
        if !ok {
            return self.drop_events();
        }
        self.deliver_ready_events();
        self.watch_reader();
    }
}
