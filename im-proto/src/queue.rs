//! The one queue of outputs, in the order the core made them, and what it keeps between drains.

use std::collections::VecDeque;

use crate::output::{Event, Output};

/// Driver instructions and user events in one queue: the order they were made is the order
/// they are drained in. Consecutive events are kept together as one run, so a driver can take
/// a whole run at once ([`Outputs::take_events`]: one move of a buffer, not one per event)
/// while the order stays the queue's own, with no bookkeeping to interleave two queues.
///
/// Memory: an idle connection keeps none. Once drained the queue gives its buffers back; the
/// next round re-creates a run at the size the last full round reached, in one allocation
/// rather than regrown by doubling.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    runs: VecDeque<Run>,
    /// Outputs taken since the queue was last empty.
    taken: usize,
    /// As many in the last full round: the size a run of events is created at.
    last_round: usize,
}

#[derive(Debug)]
enum Run {
    /// A driver instruction (never `Output::Event`).
    Instruction(Output),
    /// Events made one after the other, none empty.
    Events(VecDeque<Event>),
}

impl Outputs {
    pub fn push(&mut self, output: Output) {
        match output {
            Output::Event(event) => self.event(event),
            instruction => self.runs.push_back(Run::Instruction(instruction)),
        }
    }

    pub fn event(&mut self, event: Event) {
        if let Some(Run::Events(run)) = self.runs.back_mut() {
            run.push_back(event);
            return;
        }
        let mut run = VecDeque::with_capacity(self.last_round.clamp(4, 256));
        run.push_back(event);
        self.runs.push_back(Run::Events(run));
    }

    /// The next output; `None` once drained, which gives the buffers back.
    pub fn pop(&mut self) -> Option<Output> {
        let next = match self.runs.front_mut() {
            None => None,
            Some(Run::Events(run)) => {
                let event = run.pop_front();
                if run.is_empty() {
                    self.runs.pop_front();
                }
                event.map(Output::Event)
            }
            Some(Run::Instruction(_)) => match self.runs.pop_front() {
                Some(Run::Instruction(output)) => Some(output),
                _ => None,
            },
        };
        match next {
            Some(_) => self.taken += 1,
            None => self.drained(),
        }
        next
    }

    /// Move the events before the next instruction into `into`, in order; how many. A swap
    /// when `into` is empty.
    pub fn take_events(&mut self, into: &mut VecDeque<Event>) -> usize {
        let mut run = match self.runs.pop_front() {
            Some(Run::Events(run)) => run,
            Some(instruction) => {
                // An instruction is next: it stays first.
                self.runs.push_front(instruction);
                return 0;
            }
            None => return 0,
        };
        let n = run.len();
        if into.is_empty() {
            std::mem::swap(into, &mut run);
        } else {
            into.append(&mut run);
        }
        self.taken += n;
        n
    }

    /// Drained, and the driver is about to wait: the buffers go back.
    fn drained(&mut self) {
        if self.runs.capacity() > 0 {
            self.runs = VecDeque::new();
        }
        if self.taken > 0 {
            self.last_round = self.taken;
        }
        self.taken = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ConnId;

    fn instruction(i: u64) -> Output {
        Output::Disconnect {
            conn: ConnId::new(i),
            code: 1000,
            reason: String::new(),
        }
    }

    fn event(i: u32) -> Event {
        Event::GaveUp { attempts: i }
    }

    #[test]
    fn drained_in_the_order_made_and_empty_after() {
        let mut q = Outputs::default();
        let made = [
            Output::Event(event(0)),
            instruction(1),
            Output::Event(event(2)),
            Output::Event(event(3)),
            instruction(4),
            instruction(5),
            Output::Event(event(6)),
        ];
        for o in made.clone() {
            q.push(o);
        }
        for o in made {
            assert_eq!(q.pop(), Some(o));
        }
        assert_eq!(q.pop(), None);
        assert_eq!(q.runs.capacity(), 0, "an idle queue keeps no buffer");
    }

    #[test]
    fn taking_events_in_bulk_stops_at_the_next_instruction() {
        let mut q = Outputs::default();
        q.event(event(0));
        q.event(event(1));
        q.push(instruction(2));
        q.event(event(3));
        let mut into = VecDeque::new();
        assert_eq!(q.take_events(&mut into), 2);
        assert_eq!(into, [event(0), event(1)]);
        assert_eq!(q.take_events(&mut into), 0, "an instruction is next");
        assert_eq!(q.pop(), Some(instruction(2)));
        assert_eq!(q.take_events(&mut into), 1);
        assert_eq!(into, [event(0), event(1), event(3)]);
        assert_eq!(q.pop(), None);
    }
}
