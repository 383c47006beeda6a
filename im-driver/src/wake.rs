//! Who runs next: the wake-ups of the driver task and of the reader, and the socket's waker that
//! chooses between them.
//!
//! The socket is driven by whoever is there to do it. A reader parked in
//! [`Events::recv`](crate::Events::recv) reads the socket itself when it is woken, so a message
//! costs no hand-over between tasks (the raw loop's cost). When no reader is parked, the socket
//! wakes the driver task instead, which reads on everyone's behalf: heartbeats are answered and
//! the link watched however slowly the application reads.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::Waker;

use futures_util::task::AtomicWaker;

pub(crate) struct Wakers {
    /// The socket may have progress to offer: a frame to read, or room for a stalled write. Set
    /// by the socket's waker; a read attempt clears it first (a read attempt is not free:
    /// tungstenite zero-fills its read buffer before each one).
    socket_ready: AtomicBool,
    /// A reader waits in `recv` and takes the socket's wake-ups.
    reader_parked: AtomicBool,
    reader: AtomicWaker,
    driver: AtomicWaker,
}

impl Wakers {
    pub fn new() -> Wakers {
        Wakers {
            socket_ready: AtomicBool::new(true),
            reader_parked: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            driver: AtomicWaker::new(),
        }
    }

    /// The socket's waker fired: note the readiness, and wake whoever reads.
    pub fn socket_woke(&self) {
        self.socket_ready.store(true, SeqCst);
        if self.reader_parked.load(SeqCst) {
            self.reader.wake();
        } else {
            self.driver.wake();
        }
    }

    pub fn register_driver(&self, waker: &Waker) {
        self.driver.register(waker);
    }

    pub fn wake_driver(&self) {
        self.driver.wake();
    }

    pub fn register_reader(&self, waker: &Waker) {
        self.reader.register(waker);
    }

    pub fn wake_reader(&self) {
        self.reader.wake();
    }

    /// Park the reader: the socket's wake-ups go to it from now on. Returns whether the socket
    /// is already ready again (a wake-up between the reader's last read and now may have gone
    /// to the driver, or be tokio's budget asking the task to yield): the reader then wakes
    /// itself rather than wait.
    pub fn park_reader(&self) -> bool {
        self.reader_parked.store(true, SeqCst);
        self.socket_ready.load(SeqCst)
    }

    /// The reader runs again (woken, or polled anew): it reads the socket itself if it reads
    /// at all, so nothing is handed over here.
    pub fn resume_reader(&self) {
        self.reader_parked.store(false, SeqCst);
    }

    /// The reader gave up waiting (its `recv` was dropped). What it leaves unread goes to the
    /// driver: the socket is never left ready with no one to read it.
    pub fn abandon_reader(&self) {
        if self.reader_parked.swap(false, SeqCst) && self.socket_ready.load(SeqCst) {
            self.driver.wake();
        }
    }

    pub fn is_reader_parked(&self) -> bool {
        self.reader_parked.load(SeqCst)
    }

    /// Take the socket's readiness (before a read attempt).
    pub fn take_socket_ready(&self) -> bool {
        self.socket_ready.swap(false, SeqCst)
    }

    /// A read stopped with frames possibly still buffered.
    pub fn set_socket_ready(&self) {
        self.socket_ready.store(true, SeqCst);
    }

    pub fn is_socket_ready(&self) -> bool {
        self.socket_ready.load(SeqCst)
    }
}
