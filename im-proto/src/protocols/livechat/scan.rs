//! The livechat envelope in one pass, for the frames servers actually send.
//!
//! serde's derived decoder visits every field, wraps each in an `Option` and moves a large
//! struct around, more work than the rest of the client together (docs/PERFORMANCE.md); this
//! scanner reads the same frame once, byte by byte, with the JSON cursor of `json_scan`. It
//! declines (`None`) everything it does not decode exactly as serde would: an escape in a
//! string it returns, `null` for a field, a duplicate field, a number other than a plain `u64`
//! for `after_ms` or `seq`, a key with an escape, nesting deeper than the limit or than
//! `json_scan::MAX_NESTING`. A declined frame goes to serde, which also explains every error.
//! `inbound::tests` holds the proof that the two agree.

use std::borrow::Cow;

use super::inbound::{Inbound, InboundResult, Str};
use crate::protocols::json_scan::Cursor;

/// Decode `text`'s envelope, or `None` to let serde do it.
#[cfg(any(test, feature = "sim"))]
pub(super) fn envelope(text: &str, max_depth: usize) -> Option<Inbound<'_>> {
    let mut out = Inbound::default();
    envelope_into(text, max_depth, &mut out).map(|()| out)
}

/// Decode `text`'s envelope into `out` (default on entry), or `None` to let serde do it (`out`
/// then holds a part of the frame, to be overwritten).
///
/// In place rather than returned: the envelope is large, and moving it out of here and out of
/// the caller was two `memcpy` calls per frame (docs/PERFORMANCE.md).
pub(super) fn envelope_into<'a>(
    text: &'a str,
    max_depth: usize,
    out: &mut Inbound<'a>,
) -> Option<()> {
    let mut cursor = Cursor::new(text, max_depth);
    let mut seen_result = false;
    cursor.object(1, |c, key| match key {
        "cmd" => fill(&mut out.cmd, c.str()?),
        "msg_id" => fill(&mut out.msg_id, c.raw(2)?),
        "room" => fill(&mut out.room, c.str()?),
        // A second `result` is serde's "duplicate field" error.
        "result" if !std::mem::replace(&mut seen_result, true) => c.result(&mut out.result),
        "result" => None,
        _ => c.skip(2),
    })?;
    cursor.whitespace();
    (cursor.at == text.len()).then_some(())
}

/// Set a field once; a second occurrence is serde's "duplicate field" error.
fn fill<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

impl<'a> Cursor<'a> {
    /// `{ "key": value, ... }` at nesting `depth`, calling `member` with the cursor on each
    /// value.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        if depth > self.max_depth {
            return None;
        }
        self.expect(b'{')?;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.plain_str()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.next_token()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `result`: an object with the fields the client reads, decoded into `r`.
    fn result(&mut self, r: &mut InboundResult<'a>) -> Option<()> {
        self.object(2, |c, key| match key {
            "seed" => fill(&mut r.seed, c.str()?),
            "message" => fill(&mut r.message, c.raw(3)?),
            "room" => fill(&mut r.room, c.str()?),
            "msg_id" => fill(&mut r.msg_id, c.raw(3)?),
            "from" => fill(&mut r.from, c.raw(3)?),
            "reason" => fill(&mut r.reason, c.str()?),
            "after_ms" => fill(&mut r.after_ms, c.u64()?),
            "seq" => fill(&mut r.seq, c.u64()?),
            _ => c.skip(3),
        })
    }

    /// Any value but `null`, as its text (what `Option<&RawValue>` holds).
    fn raw(&mut self, depth: usize) -> Option<&'a str> {
        self.whitespace();
        if self.peek() == Some(b'n') {
            return None;
        }
        let start = self.at;
        self.skip(depth)?;
        self.text.get(start..self.at)
    }

    /// A non-negative integer that fits a `u64`, in the form serde_json reads as one.
    fn u64(&mut self) -> Option<u64> {
        self.whitespace();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.text.as_bytes()[start] == b'0';
        if digits == 0 || leading_zero || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    /// A string field's value.
    #[inline(always)]
    fn str(&mut self) -> Option<Str<'a>> {
        self.plain_str().map(|s| Str(Cow::Borrowed(s)))
    }
}
