//! JSON read in one pass, byte by byte, for the frames servers actually send: the cursor the
//! livechat envelope scanner (`livechat::scan`) and the Socket.IO event scanner
//! (`socketio::scan`) are built on.
//!
//! It checks JSON exactly as serde_json does where it accepts (strings, escapes, numbers,
//! literals, nesting) and declines (`None`) the rest, so that a declined frame can go to serde,
//! which also explains every error. Each scanner holds its own proof that it agrees with serde.

/// Deeper values are declined: the scanners recurse, and stack use must stay small whatever
/// `Limits::max_json_depth` says.
pub(crate) const MAX_NESTING: usize = 64;

pub(crate) struct Cursor<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
    pub(crate) max_depth: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`, declining nesting deeper than `max_depth` (and than
    /// [`MAX_NESTING`]).
    pub(crate) fn new(text: &'a str, max_depth: usize) -> Self {
        Cursor {
            text,
            at: 0,
            max_depth: max_depth.min(MAX_NESTING),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Servers rarely put any whitespace: one compare when there is none (called before every
    /// token, ~25 times per chat frame).
    #[inline(always)]
    pub(crate) fn whitespace(&mut self) {
        if self.peek().is_some_and(|b| b > b' ') {
            return;
        }
        self.skip_whitespace();
    }

    pub(crate) fn skip_whitespace(&mut self) {
        let rest = self.text.as_bytes().get(self.at..).unwrap_or_default();
        self.at += rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
    }

    /// The next non-whitespace byte, consumed.
    #[inline(always)]
    pub(crate) fn next_token(&mut self) -> Option<u8> {
        self.whitespace();
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    pub(crate) fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then_some(())
    }

    /// A string without escapes, borrowed.
    #[inline(always)]
    pub(crate) fn plain_str(&mut self) -> Option<&'a str> {
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

    /// Step over one value at nesting `depth`, checking it as serde_json's `ignore_value`
    /// does (keys with an escape are declined, as everywhere here).
    ///
    /// One loop with the open containers as bits of a word (set: object), not a call per
    /// value: a chat message's body is an object skipped whole, and calls and closures per
    /// member cost about half of it.
    pub(crate) fn skip(&mut self, depth: usize) -> Option<()> {
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
    pub(crate) fn skip_string_body(&mut self) -> Option<()> {
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

    pub(crate) fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.text.as_bytes().get(self.at..end)? == rest).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, the sign already consumed.
    pub(crate) fn skip_number(&mut self) -> Option<()> {
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

    pub(crate) fn digits(&mut self) {
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
    pub(crate) fn zero_bytes(v: u64) -> u64 {
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

/// Generators of JSON-ish text for the scanners' proofs: valid and almost valid values,
/// escapes, numbers at serde's edges, whitespace, and one-character damage.
#[cfg(test)]
pub(crate) mod arb {
    use proptest::prelude::*;

    /// How the scanners' proofs run: 4,096 cases, nothing written to disk.
    pub(crate) fn proof_config() -> ProptestConfig {
        ProptestConfig {
            cases: 4096,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    pub(crate) fn string_lit() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            24 => "[a-z ]{0,3}",
            4 => Just("é".to_owned()),
            1 => Just("\\\"".to_owned()),
            1 => Just("\\\\".to_owned()),
            1 => Just("\\n".to_owned()),
            1 => Just("\\u00e9".to_owned()),
            1 => Just("\\u12g4".to_owned()),
            1 => Just("\\x".to_owned()),
            1 => Just("\u{1}".to_owned()),
            1 => Just("\"".to_owned()),
        ];
        prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
    }

    pub(crate) fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![40 => Just(""), 4 => Just(" "), 4 => Just("\n\t "), 1 => Just("\u{a0}")]
    }

    pub(crate) fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            string_lit(),
            prop_oneof![
                Just("0"),
                Just("7"),
                Just("-3"),
                Just("1.5"),
                Just("-0.0e+1"),
                Just("1E9"),
                Just("01"),
                Just("1."),
                Just("1e"),
                Just("-"),
                Just(".5"),
                Just("+1"),
                Just("18446744073709551615"),
                Just("18446744073709551616"),
                Just("null"),
                Just("true"),
                Just("false"),
                Just("nul"),
                Just("True"),
            ]
            .prop_map(str::to_owned),
        ]
    }

    /// A value nesting up to 4 deep, its objects' keys drawn from `key`.
    pub(crate) fn value(
        key: impl Strategy<Value = String> + Clone + 'static,
    ) -> impl Strategy<Value = String> {
        scalar().prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                (prop::collection::vec((ws(), inner.clone()), 0..4)).prop_map(|items| {
                    let items: Vec<String> =
                        items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                    format!("[{}]", items.join(","))
                }),
                (prop::collection::vec((key.clone(), ws(), inner), 0..5)).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, w, v)| format!("{k}{w}:{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// `text`, sometimes damaged by one edit (a character deleted, replaced or inserted), then
    /// followed by whitespace.
    pub(crate) fn damaged(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
        let edit = prop_oneof![
            4 => Just(None),
            1 => (any::<prop::sample::Index>(), prop_oneof![
                Just(""), Just("\""), Just(","), Just("}"), Just("{"), Just("]"), Just("\\"),
                Just(" "), Just("x"), Just("0"),
            ], any::<bool>())
            .prop_map(Some),
        ];
        (text, edit, ws()).prop_map(|(text, edit, tail)| {
            let mut chars: Vec<char> = text.chars().collect();
            if let Some((at, insert, replace)) = edit {
                let at = at.index(chars.len() + 1);
                // Delete, replace (a `]` where a `}` belongs) or insert one character.
                if (insert.is_empty() || replace) && at < chars.len() {
                    chars.remove(at);
                }
                if !insert.is_empty() {
                    for (i, c) in insert.chars().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
            }
            chars.into_iter().collect::<String>() + tail
        })
    }
}
