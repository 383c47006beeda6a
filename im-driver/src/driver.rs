//! What the handles, the reader and the one task per client share, and that task.
//!
//! The task keeps the clock: it polls the connect in progress, fires the core's deadlines
//! (heartbeats, backoff, dead-link checks, write stalls) and reads the socket whenever no reader
//! waits in `recv` to do it (see [`crate::wake`]). Everything else happens in whichever task
//! holds the lock when it is due: a `send` writes its frame from the caller's task, a parked
//! reader reads its messages itself.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use im_proto::Instant;

use futures_core::Stream;
use im_proto::Event;
use tracing::debug;

use crate::conn::{Conn, Link};
use crate::owner::Owner;
use crate::runtime::{MaybeSend, MaybeSync, Runtime, SpawnError};

/// State shared by the handles, the reader and the driver task, in one allocation per client.
/// The lock is only ever held for a synchronous step, never across an `.await`.
pub(crate) struct Shared<R: Runtime> {
    conn: Mutex<Conn<R>>,
    /// The client's id in this process (1, 2, …): the `id` field of its span.
    pub id: u64,
    /// The client's span (its id, name and vendor), entered whenever the core is called, so
    /// that every line it and the driver log says which client it is.
    span: tracing::Span,
    owner: OwnerCell,
    /// Told when the driver task ends (`Conn::finished`, under the lock, says whether it has:
    /// one flag, and 8 bytes fewer in every client than an atomic copy of it).
    finished_event: event_listener::Event,
    /// How many `Client` handles exist: the last one's drop closes the client.
    handles: AtomicUsize,
}

/// Where the routing of wake-ups lives. Natively, in the shared state itself, which is then
/// the socket's waker (no allocation of its own). In a browser the state is not `Send` (the
/// browser's socket is not) and cannot be a `Waker`, so the router is allocated apart and is
/// the waker.
#[cfg(not(target_arch = "wasm32"))]
type OwnerCell = Owner;
#[cfg(target_arch = "wasm32")]
type OwnerCell = Arc<Owner>;

/// The shared state is the waker every socket operation is polled with; [`Owner`] routes its
/// wake-ups. Made for each step (one count taken and given back) rather than kept in the state,
/// which it would then keep alive by itself.
#[cfg(not(target_arch = "wasm32"))]
impl<R: Runtime> std::task::Wake for Shared<R> {
    fn wake(self: Arc<Self>) {
        self.owner.socket_woke();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.owner.socket_woke();
    }
}

impl<R: Runtime> Shared<R> {
    /// The socket's waker: this state, one count of it (see the `Wake` impl above).
    pub fn socket_waker(self: &Arc<Self>) -> Waker {
        #[cfg(not(target_arch = "wasm32"))]
        return Waker::from(self.clone());
        #[cfg(target_arch = "wasm32")]
        return Waker::from(self.owner.clone());
    }

    /// The connection, locked, inside the client's span.
    pub fn lock(&self) -> Locked<'_, R> {
        // A panic elsewhere cannot leave the core half-updated in a way that matters more than
        // stopping every client call would.
        Locked {
            conn: self.conn.lock().unwrap_or_else(PoisonError::into_inner),
            _span: self.span.enter(),
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Run a user command against the core with the current time, then carry out what it
    /// asked for at once (a frame to send is written from the caller's task). The driver task
    /// is woken only for what it alone does.
    pub fn command<T>(self: &Arc<Self>, f: impl FnOnce(&mut im_proto::Client, Instant) -> T) -> T {
        self.command_on(|conn, now| f(&mut conn.core, now))
    }

    /// [`command`](Self::command), for one that needs more of the connection than the core
    /// (a send through the durable store).
    pub fn command_on<T>(self: &Arc<Self>, f: impl FnOnce(&mut Conn<R>, Instant) -> T) -> T {
        let socket = self.socket_waker();
        let mut conn = self.lock();
        let now = conn.runtime.now();
        let r = f(&mut conn, now);
        let pumped = conn.pump(now, false, &self.owner, &socket);
        let wake_driver = conn.needs_driver(&pumped);
        drop(conn);
        if pumped.events {
            self.owner.wake_reader();
        }
        if wake_driver {
            self.owner.wake_driver();
        }
        r
    }

    pub fn add_handle(&self) {
        // As `Arc::clone`: a new handle comes from an existing one, nothing to synchronise with.
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns whether that was the last handle.
    pub fn drop_handle(&self) -> bool {
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub fn is_finished(&self) -> bool {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished
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

    /// One turn of the driver task. It never loops: anything that needs another turn wakes
    /// the task again, so the lock is given up and the runtime's budget renewed in between.
    fn poll_drive(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.owner.register_driver(cx.waker());
        let socket = self.socket_waker();
        let mut conn = self.lock();
        let now = conn.runtime.now();
        conn.poll_connecting(now, cx, &self.owner);
        // Read before firing deadlines: frames already waiting count as signs of life. Not
        // while they are left to a reader that took a batch a moment ago.
        let defer = conn.defers_reading(now);
        let read = conn.pump(now, !defer, &self.owner, &socket);
        conn.core.handle_timeout(now);
        let fired = conn.pump(now, false, &self.owner, &socket);
        let events = read.events || fired.events;
        let result = if conn.is_done() {
            conn.shut();
            debug!(protocol = conn.core.protocol_name(), "driver ended");
            Poll::Ready(())
        } else {
            let mut again = false;
            if read.connect || fired.connect {
                // A connect may just have started: polled now, it can wake this task.
                conn.poll_connecting(now, cx, &self.owner);
                again = !matches!(conn.link, Link::Connecting(..));
            }
            // The read budget ran out with frames still buffered: a parked reader is woken for
            // them, or this task goes again.
            again |= self.owner.after_driver_turn(conn.is_reading(), defer);
            again |= conn.poll_timer(cx);
            if again {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        };
        drop(conn);
        if events {
            self.owner.wake_reader();
        }
        result
    }
}

/// The locked connection, with the client's span entered for as long as the lock is held
/// (dropped in this order: the lock first).
pub(crate) struct Locked<'a, R: Runtime> {
    conn: MutexGuard<'a, Conn<R>>,
    _span: tracing::span::Entered<'a>,
}

impl<R: Runtime> std::ops::Deref for Locked<'_, R> {
    type Target = Conn<R>;

    fn deref(&self) -> &Conn<R> {
        &self.conn
    }
}

impl<R: Runtime> std::ops::DerefMut for Locked<'_, R> {
    fn deref_mut(&mut self) -> &mut Conn<R> {
        &mut self.conn
    }
}

/// Start a client's driver task; returns what the handles and the reader share with it.
pub(crate) fn spawn<R: Runtime>(
    conn: Conn<R>,
    id: u64,
    span: tracing::Span,
) -> Result<Arc<Shared<R>>, SpawnError> {
    let runtime = conn.runtime.clone();
    let shared = Arc::new(Shared {
        id,
        span,
        conn: Mutex::new(conn),
        // An `Arc` of it in a browser (see `OwnerCell`).
        #[allow(clippy::useless_conversion)]
        owner: Owner::new().into(),
        finished_event: event_listener::Event::new(),
        // The one `Client` the builder returns.
        handles: AtomicUsize::new(1),
    });
    let hints = runtime.hints();
    runtime.spawn(Drive(shared.clone(), hints))?;
    Ok(shared)
}

/// The driver task's future: the shared state and nothing else, since every idle connection
/// keeps one and a runtime's task cell grows with it (tokio's by a whole block: see
/// docs/PERFORMANCE.md); the timer lives in `Conn`.
struct Drive<R: Runtime>(Arc<Shared<R>>, R::Hints);

impl<R: Runtime> Future for Drive<R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut hinted = false;
        while let Poll::Ready(Some(())) = Pin::new(&mut self.1).poll_next(cx) {
            hinted = true;
        }
        let shared = &self.0;
        if hinted {
            debug!("the platform says the network is back or the page woke: probing");
            shared.command(|core, now| core.network_online(now));
        }
        if shared.poll_drive(cx).is_pending() {
            return Poll::Pending;
        }
        shared.finished_event.notify(usize::MAX);
        shared.owner.wake_reader();
        Poll::Ready(())
    }
}

/// The reader's side, without the runtime's type: [`crate::Events`] is not generic.
pub(crate) trait Source: MaybeSend + MaybeSync {
    /// Move every queued event into `into` (empty on entry), reading the socket first if
    /// none is queued. `Ready(false)` once the client has ended and nothing is left; `Pending`
    /// with the reader's waker registered (and, with `park`, the socket's wake-ups taken).
    /// `socket` is the waker the state makes of itself (`Shared::socket_waker`).
    fn poll_take(
        &self,
        socket: &Waker,
        into: &mut VecDeque<Event>,
        cx: &mut Context<'_>,
        park: bool,
    ) -> Poll<bool>;

    /// A parked reader stopped waiting.
    fn abandon(&self);

    /// The reader is gone for good.
    fn drop_reader(&self);
}

impl<R: Runtime> Source for Shared<R> {
    fn poll_take(
        &self,
        socket: &Waker,
        into: &mut VecDeque<Event>,
        cx: &mut Context<'_>,
        park: bool,
    ) -> Poll<bool> {
        self.owner.resume_reader();
        let mut conn = self.lock();
        let mut read = false;
        loop {
            let now = conn.runtime.now();
            if !conn.events.is_empty() {
                conn.take_events(now, into);
                // Frames are left in the socket and this reader is busy with a batch: the
                // driver reads them if it does not come back soon.
                let wake_driver =
                    conn.is_reading() && self.owner.is_socket_ready() && conn.hand_off_later(now);
                drop(conn);
                if wake_driver {
                    self.owner.wake_driver();
                }
                return Poll::Ready(true);
            }
            if conn.finished {
                return Poll::Ready(false);
            }
            if !read {
                read = true;
                let pumped = conn.pump(now, true, &self.owner, socket);
                if conn.needs_driver(&pumped) {
                    self.owner.wake_driver();
                }
                continue;
            }
            self.owner.register_reader(cx.waker());
            if park && conn.is_reading() && self.owner.park_reader() {
                // Read again after a turn of the scheduler, not in this poll: the runtime's
                // budget for this task may be what made the socket report nothing.
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }

    fn abandon(&self) {
        self.owner.abandon_reader();
    }

    fn drop_reader(&self) {
        self.owner.abandon_reader();
        let mut conn = self.lock();
        let now = conn.runtime.now();
        conn.drop_reader(now);
        drop(conn);
        self.owner.wake_driver();
    }
}
