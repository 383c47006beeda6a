//! Who reads the socket: the one state machine that decides it.
//!
//! Three parties may drive the socket: a reader parked in [`Events::recv`](crate::Events::recv)
//! reads its messages itself when woken (no hand-over between tasks: the raw loop's cost), the
//! driver task reads on everyone's behalf when no reader waits (heartbeats answered, the link
//! watched however slowly the application reads), and a command (`send`) only writes. The
//! socket's waker says "progress possible"; [`Owner::socket_woke`] routes it.
//!
//! The state is one atomic word, so every transition is a single read-modify-write:
//!
//! | bit | set by | cleared by |
//! |---|---|---|
//! | `READY`: the socket may have a frame (or room for a stalled write) | the socket's waker; a read that stopped with frames left | a read attempt, before it reads |
//! | `PARKED`: a reader waits in `recv` and takes the socket's wake-ups | the reader, as it waits | the reader, when polled again or dropped |
//!
//! The rule it keeps (checked by the `loom` tests below over every interleaving): **the socket
//! is never left `READY` with no one woken to read it.** Whoever set `READY` last, or gave up
//! `PARKED` with `READY` set, woke the reader (if parked) or the driver.
//!
//! One more rule lives under the connection's lock ([`HandOff`]): a reader that took a batch
//! with frames left gets a moment to come back for them before the driver reads them instead.

use std::task::Waker;
use std::time::Duration;

use im_proto::Instant;

#[cfg(not(im_loom))]
use futures_util::task::AtomicWaker;
#[cfg(im_loom)]
use loom::future::AtomicWaker;
#[cfg(im_loom)]
use loom::sync::atomic::{AtomicU8, Ordering::SeqCst};
#[cfg(not(im_loom))]
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};

const READY: u8 = 1;
const PARKED: u8 = 2;

/// The atomic half of socket ownership, shared by the handles, the reader and the driver task.
pub(crate) struct Owner {
    state: AtomicU8,
    reader: AtomicWaker,
    driver: AtomicWaker,
}

/// In a browser the router itself is the socket's waker (see `driver::OwnerCell`).
#[cfg(target_arch = "wasm32")]
impl std::task::Wake for Owner {
    fn wake(self: std::sync::Arc<Self>) {
        self.socket_woke();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.socket_woke();
    }
}

impl Owner {
    /// A new connection: ready (a first read finds out what is there), no reader parked.
    pub fn new() -> Owner {
        Owner {
            state: AtomicU8::new(READY),
            reader: AtomicWaker::new(),
            driver: AtomicWaker::new(),
        }
    }

    /// The socket's waker fired: note the readiness, and wake whoever reads.
    pub fn socket_woke(&self) {
        let before = self.state.fetch_or(READY, SeqCst);
        if before & PARKED != 0 {
            self.reader.wake();
        } else {
            self.driver.wake();
        }
    }

    pub fn register_driver(&self, waker: &Waker) {
        register(&self.driver, waker);
    }

    pub fn wake_driver(&self) {
        self.driver.wake();
    }

    pub fn register_reader(&self, waker: &Waker) {
        register(&self.reader, waker);
    }

    pub fn wake_reader(&self) {
        self.reader.wake();
    }

    /// Park the reader: the socket's wake-ups go to it from now on. Returns whether the socket
    /// is already ready again (a wake-up between the reader's last read and now may have gone
    /// to the driver, or be the runtime's budget asking the task to yield): the reader then
    /// wakes itself rather than wait.
    pub fn park_reader(&self) -> bool {
        self.state.fetch_or(PARKED, SeqCst) & READY != 0
    }

    /// The reader runs again (woken, or polled anew): it reads the socket itself if it reads
    /// at all, so nothing is handed over here.
    pub fn resume_reader(&self) {
        self.state.fetch_and(!PARKED, SeqCst);
    }

    /// The reader gave up waiting (its `recv` was dropped, or it is gone). What it leaves
    /// unread goes to the driver: the socket is never left ready with no one to read it.
    pub fn abandon_reader(&self) {
        let before = self.state.fetch_and(!PARKED, SeqCst);
        if before & PARKED != 0 && before & READY != 0 {
            self.driver.wake();
        }
    }

    /// Take the socket's readiness (before a read attempt: a read attempt is not free, as
    /// tungstenite zero-fills its read buffer before each one).
    pub fn take_socket_ready(&self) -> bool {
        self.state.fetch_and(!READY, SeqCst) & READY != 0
    }

    /// A read stopped with frames possibly still buffered.
    pub fn set_socket_ready(&self) {
        self.state.fetch_or(READY, SeqCst);
    }

    pub fn is_socket_ready(&self) -> bool {
        self.state.load(SeqCst) & READY != 0
    }

    /// The driver's turn is over and frames may be left in the socket (its read budget ran
    /// out). A parked reader is woken to read them; otherwise, unless a reader was just handed
    /// a batch and comes back for the rest ([`HandOff`]), returns whether the driver must take
    /// another turn itself. `reading`: whether the socket is read at all (not held back).
    pub fn after_driver_turn(&self, reading: bool, deferred: bool) -> bool {
        let state = self.state.load(SeqCst);
        if !reading || state & READY == 0 {
            return false;
        }
        if state & PARKED != 0 {
            // Its wake-up may have come before this turn took the readiness.
            self.reader.wake();
            return false;
        }
        !deferred
    }
}

#[cfg(not(im_loom))]
fn register(slot: &AtomicWaker, waker: &Waker) {
    slot.register(waker);
}

#[cfg(im_loom)]
fn register(slot: &AtomicWaker, waker: &Waker) {
    slot.register_by_ref(waker);
}

/// How long a reader that took a batch, with frames left in the socket, has to come back for
/// them before the driver reads them instead. Not at once: on a multi-threaded runtime the
/// driver would read the next batch on another core while the reader works through this one,
/// both contending for the lock and passing every event between caches; a reader that is
/// merely busy comes back well within this (docs/PERFORMANCE.md).
pub(crate) const HAND_OFF_AFTER: Duration = Duration::from_millis(5);

/// The half of socket ownership kept under the connection's lock: the moment a reader that
/// took a batch must be back by.
#[derive(Debug, Default)]
pub(crate) struct HandOff {
    at: Option<Instant>,
}

impl HandOff {
    /// The reader took a batch and frames are left: it has [`HAND_OFF_AFTER`] to read them.
    pub fn reader_took_batch(&mut self, now: Instant) {
        if self.at.is_none() {
            self.at = now.checked_add(HAND_OFF_AFTER);
        }
    }

    /// Whoever reads now takes over what was left for the reader.
    pub fn read(&mut self) {
        self.at = None;
    }

    /// Whether the driver leaves the socket to the reader for now. Once the moment has passed
    /// the hand-off is over, whether or not the socket can be read (a deadline left in the
    /// past would wake the driver again and again).
    pub fn defers_driver(&mut self, now: Instant) -> bool {
        match self.at {
            Some(at) if now < at => true,
            _ => {
                self.at = None;
                false
            }
        }
    }

    /// When the driver must wake to take over, if a reader holds the socket.
    pub fn deadline(&self) -> Option<Instant> {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_has_until_the_hand_off_then_the_driver_reads() {
        let now = Instant::now();
        let mut h = HandOff::default();
        assert!(!h.defers_driver(now));
        h.reader_took_batch(now);
        h.reader_took_batch(now + Duration::from_millis(4));
        assert_eq!(h.deadline(), Some(now + HAND_OFF_AFTER), "not pushed back");
        assert!(h.defers_driver(now + Duration::from_millis(4)));
        assert!(!h.defers_driver(now + HAND_OFF_AFTER));
        assert_eq!(h.deadline(), None, "over once passed");
        h.reader_took_batch(now);
        h.read();
        assert!(!h.defers_driver(now));
    }
}

/// Every interleaving of the parties, under `loom`:
/// `RUSTFLAGS="--cfg im_loom" cargo test -p im-driver --lib --release owner::loom`.
#[cfg(all(test, im_loom))]
mod loom_tests {
    use std::sync::Arc;
    use std::task::Wake;

    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::*;

    /// A task's waker that counts its wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    impl Task {
        fn woken(&self) -> bool {
            self.0.load(SeqCst) > 0
        }
    }

    struct World {
        owner: Owner,
        reader: Arc<Task>,
        driver: Arc<Task>,
    }

    fn world() -> Arc<World> {
        let w = World {
            owner: Owner::new(),
            reader: Arc::new(Task::default()),
            driver: Arc::new(Task::default()),
        };
        w.owner.register_reader(&Waker::from(w.reader.clone()));
        w.owner.register_driver(&Waker::from(w.driver.clone()));
        // Both start having read: nothing pending.
        w.owner.take_socket_ready();
        Arc::new(w)
    }

    /// The rule: a ready socket has someone woken to read it (the parked reader, or the
    /// driver), or the reader is about to read it itself (it saw `READY` when parking).
    fn nobody_forgotten(w: &World, reader_saw_ready: bool) {
        let state = w.owner.state.load(SeqCst);
        if state & READY == 0 || reader_saw_ready {
            return;
        }
        let parked = state & PARKED != 0;
        assert!(
            w.driver.woken() || (parked && w.reader.woken()),
            "the socket is ready and nobody was woken to read it (parked: {parked})"
        );
    }

    /// The reader parks while a frame arrives (a command's write, or the server's frame,
    /// fires the socket's waker).
    #[test]
    fn reader_parks_while_a_frame_arrives() {
        loom::model(|| {
            let w = world();
            let socket = {
                let w = w.clone();
                thread::spawn(move || w.owner.socket_woke())
            };
            let saw_ready = w.owner.park_reader();
            socket.join().unwrap();
            nobody_forgotten(&w, saw_ready);
        });
    }

    /// The reader gives up waiting (its `recv` is dropped, the client closes) while a frame
    /// arrives: what it leaves goes to the driver.
    #[test]
    fn reader_leaves_while_a_frame_arrives() {
        loom::model(|| {
            let w = world();
            w.owner.park_reader();
            let socket = {
                let w = w.clone();
                thread::spawn(move || w.owner.socket_woke())
            };
            w.owner.abandon_reader();
            socket.join().unwrap();
            nobody_forgotten(&w, false);
        });
    }

    /// The driver takes over (reads, and stops with frames left) while the reader parks and a
    /// frame arrives.
    #[test]
    fn driver_takes_over_while_the_reader_parks() {
        loom::model(|| {
            let w = world();
            let socket = {
                let w = w.clone();
                thread::spawn(move || w.owner.socket_woke())
            };
            let driver = {
                let w = w.clone();
                thread::spawn(move || {
                    // Its turn begins: the wake-ups before it are spent.
                    w.driver.0.store(0, SeqCst);
                    if w.owner.take_socket_ready() {
                        // Read a batch; frames were left behind it.
                        w.owner.set_socket_ready();
                    }
                    if w.owner.after_driver_turn(true, false) {
                        // It takes another turn.
                        w.driver.0.fetch_add(1, SeqCst);
                    }
                })
            };
            let saw_ready = w.owner.park_reader();
            socket.join().unwrap();
            driver.join().unwrap();
            nobody_forgotten(&w, saw_ready);
        });
    }

    /// The reader resumes (polled again: it will read for itself), parks again, and leaves,
    /// with the socket firing throughout.
    #[test]
    fn reader_resumes_parks_and_leaves_while_frames_arrive() {
        loom::model(|| {
            let w = world();
            let socket = {
                let w = w.clone();
                thread::spawn(move || {
                    w.owner.socket_woke();
                    w.owner.socket_woke();
                })
            };
            w.owner.park_reader();
            w.owner.resume_reader();
            // Reads what is there (or nothing), parks again, then gives up waiting: whatever
            // it saw, the socket is the driver's once it leaves.
            w.owner.take_socket_ready();
            w.owner.park_reader();
            w.owner.abandon_reader();
            socket.join().unwrap();
            nobody_forgotten(&w, false);
        });
    }
}
