//! Read-ahead under the WebSocket: one system call for many of tungstenite's small reads.
//!
//! tungstenite (0.30) reads into what is left of its 4 KiB buffer, and reserves each frame's
//! length right after the frame's header, even when the frame is already in the buffer; while
//! earlier frames are still held (im hands bodies on without copying them,
//! and they wait in the event queue), that reserve cannot reuse the buffer, so `bytes` moves the
//! unread rest into a new 4 KiB buffer and the next read fills only what is left of it. A busy
//! connection then made 1.7 times the reads of a loop that drops each frame at once
//! (docs/PERFORMANCE.md). Reading ahead in chunks of [`READ_AHEAD`] bytes turns those reads
//! into copies from memory.
//!
//! The chunk is allocated when a read fills all tungstenite asked for (the socket holds more)
//! and freed as soon as the socket has nothing more to give, so an idle connection holds none of
//! it and a heartbeat's few bytes are read as before.

use std::io;
use std::task::Poll;

/// Bytes read from the socket at once when tungstenite asks for fewer.
pub const READ_AHEAD: usize = 16 * 1024;

/// Bytes read from a socket and not yet handed to the reader above it: at most
/// [`READ_AHEAD`], and nothing while the socket has nothing to read.
///
/// One pointer while idle: the offsets live with the bytes they index.
#[derive(Debug, Default)]
pub struct ReadAhead {
    held: Option<Box<Chunk>>,
}

/// A read from the socket, handed on in pieces.
struct Chunk {
    /// `bytes[at..end]` is read and not yet handed on.
    at: usize,
    end: usize,
    /// Allocated zeroed (`alloc_zeroed`, glibc's `calloc`) rather than written zero: fresh
    /// pages the allocator knows are zero stay untouched, and cost no resident memory, until a
    /// read fills them.
    bytes: Box<[u8]>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("buffered", &(self.end - self.at))
            .finish_non_exhaustive()
    }
}

impl ReadAhead {
    /// Bytes held and not yet handed on.
    pub fn buffered(&self) -> usize {
        self.held.as_ref().map_or(0, |c| c.end - c.at)
    }

    /// Fill `dst` from what is held, or else from `read` (the socket's own read): straight into
    /// `dst` while the socket is quiet or when `dst` is at least [`READ_AHEAD`] long, through
    /// the chunk while it is busy. `Pending` and errors are `read`'s own; nothing held is lost
    /// to either.
    pub fn poll_read(
        &mut self,
        dst: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.buffered() > 0 || dst.is_empty() {
            return Poll::Ready(Ok(self.hand_on(dst)));
        }
        let chunk = match &mut self.held {
            Some(chunk) if dst.len() < READ_AHEAD => chunk,
            _ => {
                let read = read(dst);
                // A read that fills all it was given says the socket holds more: read ahead
                // from the next one (a `dst` under READ_AHEAD came here for want of a chunk).
                // A heartbeat's few bytes never allocate it.
                if matches!(read, Poll::Ready(Ok(n)) if n == dst.len() && n < READ_AHEAD) {
                    self.held = Some(Box::new(Chunk {
                        at: 0,
                        end: 0,
                        bytes: vec![0; READ_AHEAD].into_boxed_slice(),
                    }));
                }
                return read;
            }
        };
        match read(&mut chunk.bytes) {
            Poll::Ready(Ok(n)) => {
                (chunk.at, chunk.end) = (0, n.min(chunk.bytes.len()));
                Poll::Ready(Ok(self.hand_on(dst)))
            }
            other => {
                // Nothing more to read for now: an idle connection holds no chunk.
                self.held = None;
                other
            }
        }
    }

    /// Copy what is held into `dst`, as much as fits.
    fn hand_on(&mut self, dst: &mut [u8]) -> usize {
        let Some(chunk) = &mut self.held else {
            return 0;
        };
        let n = dst.len().min(chunk.end - chunk.at);
        dst[..n].copy_from_slice(&chunk.bytes[chunk.at..chunk.at + n]);
        chunk.at += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that gives `data` in reads of at most `per_read` bytes, then `Pending`.
    struct Socket {
        data: Vec<u8>,
        per_read: usize,
        reads: usize,
    }

    impl Socket {
        fn new(data: Vec<u8>, per_read: usize) -> Self {
            Socket {
                data,
                per_read,
                reads: 0,
            }
        }

        fn read(&mut self, into: &mut [u8]) -> Poll<io::Result<usize>> {
            if self.data.is_empty() {
                return Poll::Pending;
            }
            self.reads += 1;
            let n = into.len().min(self.per_read).min(self.data.len());
            into[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    fn read_all(ahead: &mut ReadAhead, socket: &mut Socket, asks: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut dst = vec![0; asks];
        while let Poll::Ready(n) = ahead.poll_read(&mut dst, |into| socket.read(into)) {
            got.extend_from_slice(&dst[..n.unwrap()]);
        }
        got
    }

    #[test]
    fn small_reads_are_served_from_one_socket_read_in_order() {
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut socket = Socket::new(data.clone(), usize::MAX);
        let mut ahead = ReadAhead::default();
        assert_eq!(read_all(&mut ahead, &mut socket, 1_000), data);
        // The first read, straight into the reader's buffer, fills it: the rest comes in chunks.
        assert_eq!(socket.reads, 1 + 39_000usize.div_ceil(READ_AHEAD));
    }

    #[test]
    fn a_busy_socket_gone_quiet_leaves_no_chunk_behind() {
        let mut socket = Socket::new(vec![7; 5_000], 3_000);
        let mut ahead = ReadAhead::default();
        assert_eq!(read_all(&mut ahead, &mut socket, 64), vec![7; 5_000]);
        assert_eq!(ahead.buffered(), 0);
        assert!(ahead.held.is_none());
    }

    #[test]
    fn an_idle_connection_pays_one_pointer() {
        assert_eq!(
            std::mem::size_of::<ReadAhead>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn a_quiet_socket_is_read_straight_through() {
        // A heartbeat's frame: less than the reader asked for, so nothing waits behind it.
        let mut socket = Socket::new(vec![7; 100], 30);
        let mut ahead = ReadAhead::default();
        let mut dst = [0; 64];
        let mut sizes = Vec::new();
        while let Poll::Ready(n) = ahead.poll_read(&mut dst, |into| socket.read(into)) {
            sizes.push(n.unwrap());
            assert!(ahead.held.is_none());
        }
        assert_eq!(sizes, [30, 30, 30, 10]);
    }

    #[test]
    fn a_large_read_goes_straight_to_the_socket() {
        let mut socket = Socket::new(vec![1; READ_AHEAD * 2], usize::MAX);
        let mut ahead = ReadAhead::default();
        let mut dst = vec![0; READ_AHEAD * 2];
        let n = ahead.poll_read(&mut dst, |into| socket.read(into));
        assert!(matches!(n, Poll::Ready(Ok(n)) if n == READ_AHEAD * 2));
        assert!(ahead.held.is_none());
    }

    #[test]
    fn end_of_stream_and_errors_reach_the_reader_after_what_is_held() {
        let mut ahead = ReadAhead::default();
        let mut dst = [0; 4];
        let full = ahead.poll_read(&mut dst, |into| {
            into.copy_from_slice(b"abcd");
            Poll::Ready(Ok(4))
        });
        assert!(matches!(full, Poll::Ready(Ok(4))));
        let ahead_of_reader = ahead.poll_read(&mut dst, |into| {
            into[..6].copy_from_slice(b"efghij");
            Poll::Ready(Ok(6))
        });
        assert!(matches!(ahead_of_reader, Poll::Ready(Ok(4))));
        let rest = ahead.poll_read(&mut dst, |_| panic!("two bytes are still held"));
        assert!(matches!(rest, Poll::Ready(Ok(2))));
        assert_eq!(&dst[..2], b"ij");
        let eof = ahead.poll_read(&mut dst, |_| Poll::Ready(Ok(0)));
        assert!(matches!(eof, Poll::Ready(Ok(0))));
        let reset = |_: &mut [u8]| Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        let err = ahead.poll_read(&mut dst, reset);
        assert!(matches!(err, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset));
    }
}
