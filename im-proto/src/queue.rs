//! The one queue of outputs, in the order the core made them, and what it keeps between drains.

use std::collections::VecDeque;

use crate::output::{Event, Output};

/// Driver instructions and user events in one queue: the order they were made is the order
/// they are drained in, with no bookkeeping to interleave two queues.
///
/// Memory: an idle connection keeps none. Once drained the queue gives its buffer back; the
/// next round re-creates it at the size the last full round reached, in one allocation rather
/// than regrown by doubling.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    queue: VecDeque<Output>,
    /// Outputs taken since the queue was last empty.
    taken: usize,
    /// As many in the last full round: the size the queue is re-created at.
    last_round: usize,
}

impl Outputs {
    pub fn push(&mut self, output: Output) {
        if self.queue.capacity() == 0 {
            self.queue.reserve(self.last_round.clamp(4, 256));
        }
        self.queue.push_back(output);
    }

    pub fn event(&mut self, event: Event) {
        self.push(Output::Event(event));
    }

    /// The next output; `None` once drained, which gives the buffer back.
    pub fn pop(&mut self) -> Option<Output> {
        let next = self.queue.pop_front();
        if next.is_some() {
            self.taken += 1;
        } else {
            if self.queue.capacity() > 0 {
                self.queue = VecDeque::new();
            }
            if self.taken > 0 {
                self.last_round = self.taken;
            }
            self.taken = 0;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ConnId;

    fn transmit(i: u64) -> Output {
        Output::Disconnect {
            conn: ConnId(i),
            code: 1000,
            reason: String::new(),
        }
    }

    #[test]
    fn drained_in_order_and_empty_after() {
        let mut q = Outputs::default();
        for i in 0..10 {
            q.push(transmit(i));
        }
        for i in 0..10 {
            assert_eq!(q.pop(), Some(transmit(i)));
        }
        assert_eq!(q.pop(), None);
        assert_eq!(q.queue.capacity(), 0, "an idle queue keeps no buffer");
        q.push(transmit(0));
        assert!(
            q.queue.capacity() >= 10,
            "re-created at the last round's size"
        );
    }
}
