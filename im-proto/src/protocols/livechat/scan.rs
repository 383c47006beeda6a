//! The livechat envelope in one pass, for the frames servers actually send.
//!
//! serde's derived decoder visits every field, wraps each in an `Option` and moves a large
//! struct around, more work than the rest of the client together (docs/PERFORMANCE.md); this
//! scanner reads the same frame once, byte by byte. It checks JSON exactly as serde_json does where it accepts (strings,
//! escapes, numbers, literals, nesting, trailing bytes) and declines (`None`) everything it
//! does not decode exactly as serde would: an escape in a string it returns, `null` for a
//! field, a duplicate field, a number other than a plain `u64` for `after_ms` or `seq`, a key with an
//! escape, nesting deeper than the limit or than [`MAX_NESTING`]. A declined frame goes to serde,
//! which also explains every error. `inbound::tests` holds the proof that the two agree.

use std::borrow::Cow;

use super::inbound::{Inbound, InboundResult, Str};

/// Deeper values are left to serde: the scanner recurses, and stack use must stay small
/// whatever `Limits::max_json_depth` says.
const MAX_NESTING: usize = 64;

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
    let mut cursor = Cursor {
        text,
        at: 0,
        max_depth: max_depth.min(MAX_NESTING),
    };
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

struct Cursor<'a> {
    text: &'a str,
    at: usize,
    max_depth: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Servers rarely put any whitespace: one compare when there is none (called before every
    /// token, ~25 times per chat frame).
    #[inline(always)]
    fn whitespace(&mut self) {
        if self.peek().is_some_and(|b| b > b' ') {
            return;
        }
        self.skip_whitespace();
    }

    fn skip_whitespace(&mut self) {
        let rest = self.text.as_bytes().get(self.at..).unwrap_or_default();
        self.at += rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
    }

    /// The next non-whitespace byte, consumed.
    #[inline(always)]
    fn next_token(&mut self) -> Option<u8> {
        self.whitespace();
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then_some(())
    }

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

    /// A string field's value.
    #[inline(always)]
    fn str(&mut self) -> Option<Str<'a>> {
        self.plain_str().map(|s| Str(Cow::Borrowed(s)))
    }

    /// A string without escapes, borrowed.
    #[inline(always)]
    fn plain_str(&mut self) -> Option<&'a str> {
        self.whitespace();
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        // A word at a time, as string bodies: a loop that tests each byte mispredicts its exit
        // once per string, and a frame is mostly short strings. Inlined by force (with
        // `plain_run` and `str`): out of line, the calls cost more than the word loop saves.
        let end = start + plain_run(&bytes[start..]);
        if bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
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

    /// Step over one value at nesting `depth`, checking it as serde_json's `ignore_value`
    /// does (keys with an escape are declined, as everywhere here).
    ///
    /// One loop with the open containers as bits of a word (set: object), not a call per
    /// value: a chat message's body is an object skipped whole, and calls and closures per
    /// member cost about half of it.
    fn skip(&mut self, depth: usize) -> Option<()> {
        let mut open: u64 = 0;
        let mut level = 0;
        'value: loop {
            match self.next_token()? {
                b'"' => self.skip_string_body()?,
                b'n' => self.literal(b"ull")?,
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'-' => self.skip_number()?,
                b'0'..=b'9' => {
                    self.at -= 1;
                    self.skip_number()?;
                }
                b @ (b'{' | b'[') => {
                    // MAX_NESTING (64) bounds `level` to the bits of `open`.
                    if depth + level > self.max_depth {
                        return None;
                    }
                    let object = b == b'{';
                    self.whitespace();
                    if self.peek() == Some(if object { b'}' } else { b']' }) {
                        self.at += 1;
                    } else {
                        open = (open << 1) | u64::from(object);
                        level += 1;
                        if object {
                            self.plain_str()?;
                            self.expect(b':')?;
                        }
                        continue 'value;
                    }
                }
                _ => return None,
            }
            // After a value: a separator and the next member, or the end of containers.
            loop {
                if level == 0 {
                    return Some(());
                }
                let object = open & 1 == 1;
                match self.next_token()? {
                    b',' => {
                        if object {
                            self.plain_str()?;
                            self.expect(b':')?;
                        }
                        continue 'value;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                open >>= 1;
                level -= 1;
            }
        }
    }

    /// After the opening quote: up to and including the closing one. Escapes as serde_json
    /// checks them (`\u` needs four hex digits; what they encode is not checked here).
    fn skip_string_body(&mut self) -> Option<()> {
        loop {
            self.at += plain_run(&self.text.as_bytes()[self.at..]);
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return Some(()),
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.text.as_bytes().get(self.at..self.at + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 4;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.text.as_bytes().get(self.at..end)? == rest).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, the sign already consumed.
    fn skip_number(&mut self) -> Option<()> {
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        let rest = &self.text.as_bytes()[self.at..];
        self.at += rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
    }
}

/// How many bytes at the start of `bytes` are plain string content (not `"`, `\\` or a control
/// character). Eight at a time: string bytes are nearly all plain, and the body of a chat
/// message is mostly one string.
#[inline(always)]
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    /// High bit set in each byte of `v` that is zero; exact for the lowest such byte (a borrow
    /// can only mark bytes above a real one), which is the one wanted.
    fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGH
    }
    let mut at = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let stops = zero_bytes(v ^ (ONES * u64::from(b'"')))
            | zero_bytes(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if stops != 0 {
            return at + (stops.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = &bytes[at..];
    at + rest
        .iter()
        .position(|&b| ends_plain_run(b))
        .unwrap_or(rest.len())
}

/// Where serde_json stops reading a string's plain content: its end, an escape, or a control
/// character (an error).
fn ends_plain_run(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

#[cfg(test)]
mod tests {
    use super::plain_run;

    #[test]
    fn plain_run_stops_at_the_first_quote_backslash_or_control_character() {
        let plain = "abcdefghijklmnopqrstuvwxyz é日本 0123456789";
        for stop in ["\"", "\\", "\u{0}", "\u{1f}", "\n"] {
            for at in 0..plain.len() {
                if !plain.is_char_boundary(at) {
                    continue;
                }
                let text = format!("{}{stop}{}\"", &plain[..at], &plain[at..]);
                assert_eq!(plain_run(text.as_bytes()), at, "{text:?}");
            }
        }
        assert_eq!(plain_run(plain.as_bytes()), plain.len());
        assert_eq!(plain_run(b""), 0);
        // A control character right after another stop byte, and bytes >= 0x80 never stop.
        assert_eq!(plain_run(b"ab\x00\x01cdefgh"), 2);
        assert_eq!(
            plain_run("\u{7f}\u{80}ÿ€".as_bytes()),
            "\u{7f}\u{80}ÿ€".len()
        );
    }
}
