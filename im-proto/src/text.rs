//! Text shared instead of copied: a received frame, and the channel and body a decoder takes
//! out of it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::{Deref, Range};

use arrayvec::ArrayString;
use bytes::{Buf, Bytes};

use shared::Shared;

/// Texts this short are copied rather than shared. A shared slice costs two atomic operations
/// on its buffer's count (one to take it, one to drop it); a channel name of a few bytes copies
/// in a fraction of that time (docs/PERFORMANCE.md). 20 keeps `Text` at 32 bytes.
const INLINE: usize = 20;

/// Immutable UTF-8 text whose clones and slices share one buffer.
///
/// A text frame arrives as a `Text`; a decoder hands on the message's channel and body as
/// parts of it ([`Text::slice_ref`], [`Text::into_slice`]), so a chat message costs no copy of
/// its body and no allocation between the socket and the user. Short texts (a channel name) are
/// kept inline instead, which is cheaper than sharing.
///
/// Like [`bytes::Bytes`], a slice keeps its whole buffer alive. To keep a small part of a large
/// message for a long time, copy it out (`String::from(text.as_str())`).
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Shared),
    Inline(ArrayString<INLINE>),
}

/// The shared buffer of checked UTF-8: tungstenite's own type with the `tungstenite` feature,
/// so a frame it read (and checked) becomes a `Text` without a second check; `bytestring`'s
/// otherwise. Both are a `Bytes` known to hold UTF-8.
#[cfg(feature = "tungstenite")]
mod shared {
    use bytes::Bytes;

    pub type Shared = tungstenite::Utf8Bytes;

    pub const fn from_static(text: &'static str) -> Shared {
        Shared::from_static(text)
    }

    pub fn slice_ref(s: &Shared, part: &str) -> Shared {
        // tungstenite has no slice of its own: the part is checked again (it is valid, lying
        // within valid text), or copied should that ever fail.
        let bytes = Bytes::from(s.clone()).slice_ref(part.as_bytes());
        Shared::try_from(bytes).unwrap_or_else(|_| Shared::from(part))
    }

    pub fn into_bytes(s: Shared) -> Bytes {
        s.into()
    }

    pub fn into_string(s: Shared) -> String {
        s.as_str().to_owned()
    }
}

#[cfg(not(feature = "tungstenite"))]
mod shared {
    use bytes::Bytes;

    pub type Shared = bytestring::ByteString;

    pub const fn from_static(text: &'static str) -> Shared {
        Shared::from_static(text)
    }

    pub fn slice_ref(s: &Shared, part: &str) -> Shared {
        s.slice_ref(part)
    }

    pub fn into_bytes(s: Shared) -> Bytes {
        s.into_bytes()
    }

    pub fn into_string(s: Shared) -> String {
        s.into()
    }
}

impl Text {
    pub const fn from_static(text: &'static str) -> Text {
        Text(Repr::Shared(shared::from_static(text)))
    }

    /// Take bytes that must be UTF-8 (a WebSocket text frame, a part of a binary one), without
    /// copying them unless they are short.
    pub fn from_utf8(bytes: Bytes) -> Result<Text, std::str::Utf8Error> {
        if bytes.len() <= INLINE {
            if let Some(text) = inline(std::str::from_utf8(&bytes)?) {
                return Ok(text);
            }
        }
        Shared::try_from(bytes).map(|s| Text(Repr::Shared(s)))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Shared(s) => s,
            Repr::Inline(s) => s,
        }
    }

    /// `part` as a `Text` sharing this one's buffer when it lies within it (a `&str` a parser
    /// borrowed from [`as_str`](Self::as_str)); a copy otherwise, and when it is short.
    // Inlined: a decoder's short parts (a channel name per message) take the first branch, and
    // left to itself the compiler's choice here came and went with unrelated changes.
    #[inline]
    pub fn slice_ref(&self, part: &str) -> Text {
        if let Some(inline) = inline(part) {
            return inline;
        }
        match &self.0 {
            Repr::Shared(s) if self.range_of(part).is_some() => {
                Text(Repr::Shared(shared::slice_ref(s, part)))
            }
            _ => Text::from(part),
        }
    }

    /// Where `part` lies within this text, when it is a slice of it (a `&str` a parser borrowed
    /// from [`as_str`](Self::as_str)): the range for [`into_slice`](Self::into_slice).
    pub(crate) fn range_of(&self, part: &str) -> Option<Range<usize>> {
        let (base, start) = (self.as_ptr() as usize, part.as_ptr() as usize);
        let offset = start.checked_sub(base)?;
        (offset + part.len() <= self.len()).then(|| offset..offset + part.len())
    }

    /// This text's `range`, keeping its buffer: unlike [`slice_ref`](Self::slice_ref), which
    /// leaves this text whole, it moves the buffer instead of sharing it, so no reference
    /// count is touched (what a decoder wants for the one part of a frame it keeps last).
    /// `None` when the range is out of bounds or splits a character.
    pub fn into_slice(self, range: Range<usize>) -> Option<Text> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        if range.len() <= INLINE {
            return self.get(range).and_then(inline);
        }
        match self.0 {
            Repr::Shared(s) => {
                let mut bytes = shared::into_bytes(s);
                bytes.truncate(range.end);
                bytes.advance(range.start);
                // The part is checked again, which also refuses a range that splits a
                // character.
                Text::from_utf8(bytes).ok()
            }
            // Not reached: an inline text is no longer than an inline part.
            Repr::Inline(s) => s.get(range).map(Text::from),
        }
    }

    /// The bytes, without copying them when they are shared.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(s) => shared::into_bytes(s),
            Repr::Inline(s) => Bytes::copy_from_slice(s.as_bytes()),
        }
    }
}

/// `text` copied inline when it is short enough to be cheaper copied than shared; `None`
/// otherwise (a decoder then shares the frame's buffer instead).
pub(crate) fn inline(text: &str) -> Option<Text> {
    ArrayString::from(text).ok().map(|s| Text(Repr::Inline(s)))
}

impl Default for Text {
    fn default() -> Text {
        Text(Repr::Inline(ArrayString::new_const()))
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        // A long string is kept as it is allocated.
        inline(&s).unwrap_or_else(|| Text(Repr::Shared(s.into())))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        inline(s).unwrap_or_else(|| Text(Repr::Shared(s.into())))
    }
}

/// A text frame tungstenite read, which it checked: no second check, no copy.
#[cfg(feature = "tungstenite")]
impl From<tungstenite::Utf8Bytes> for Text {
    fn from(text: tungstenite::Utf8Bytes) -> Text {
        Text(Repr::Shared(text))
    }
}

/// A frame to write, as tungstenite takes it: no check, and no copy unless it is short.
#[cfg(feature = "tungstenite")]
impl From<Text> for tungstenite::Utf8Bytes {
    fn from(text: Text) -> tungstenite::Utf8Bytes {
        match text.0 {
            Repr::Shared(s) => s,
            Repr::Inline(s) => s.as_str().into(),
        }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        match t.0 {
            Repr::Shared(s) => shared::into_string(s),
            Repr::Inline(s) => s.as_str().to_owned(),
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_the_buffer_and_foreign_or_short_parts_are_copied() {
        let frame = Text::from(String::from(r#"{"room":"a room with a long name","n":1}"#));
        let room = &frame.as_str()[9..32];
        let shared = frame.slice_ref(room);
        assert_eq!(shared, "a room with a long name");
        assert_eq!(shared.as_ptr(), room.as_ptr());
        let foreign = frame.slice_ref("a room with a long name");
        assert_eq!(foreign, room);
        assert_ne!(foreign.as_ptr(), room.as_ptr());
        // Short parts are copied inline: no count to take on the frame's buffer.
        let short = frame.slice_ref(&frame.as_str()[2..6]);
        assert_eq!(short, "room");
        assert!(matches!(short.0, Repr::Inline(_)));
        assert_eq!(frame.slice_ref(""), "");
    }

    #[test]
    fn into_slice_moves_the_buffer_and_refuses_bad_ranges() {
        let frame = Text::from(String::from(
            r#"{"message":{"text":"héllo, a long enough body"}}"#,
        ));
        let body = &frame.as_str()[11..frame.len() - 1];
        let (range, at) = (frame.range_of(body).unwrap(), body.as_ptr());
        assert_eq!(frame.range_of("elsewhere"), None);
        let part = frame.clone().into_slice(range.clone()).unwrap();
        assert_eq!(part, r#"{"text":"héllo, a long enough body"}"#);
        assert_eq!(part.as_ptr(), at, "the frame's buffer, not a copy");
        // é is two bytes: a range that splits it, or runs past the end, is refused.
        let e = frame.find('é').unwrap();
        assert_eq!(frame.clone().into_slice(e + 1..frame.len()), None);
        assert_eq!(frame.clone().into_slice(0..frame.len() + 1), None);
        assert_eq!(frame.clone().into_slice(2..9).unwrap(), "message");
        let short = Text::from("short");
        assert_eq!(short.into_slice(1..3).unwrap(), "ho");
    }

    #[test]
    fn every_part_of_a_text_comes_out_as_str_get_gives_it() {
        // Short parts (inline) and long ones (shared), multibyte characters, bad ranges.
        let whole = Text::from(String::from("a é日本 {\"k\":\"v\"} 0123456789 ü€ xyz"));
        for start in 0..=whole.len() {
            for end in start..=whole.len() + 1 {
                let expected = whole.get(start..end);
                let moved = whole.clone().into_slice(start..end);
                assert_eq!(moved.as_deref(), expected, "into_slice({start}..{end})");
                if let Some(part) = expected {
                    assert_eq!(whole.slice_ref(part), part, "slice_ref({start}..{end})");
                }
            }
        }
    }

    #[test]
    fn short_and_long_texts_compare_and_convert_alike() {
        let long = "x".repeat(INLINE + 1);
        for s in ["", "b", long.as_str()] {
            let (a, b) = (Text::from(s), Text::from(String::from(s)));
            assert_eq!(a, b);
            assert_eq!(a.cmp(&b), Ordering::Equal);
            assert_eq!(String::from(a.clone()), s);
            assert_eq!(a.into_bytes(), s.as_bytes());
        }
        assert_eq!(
            Text::from("a").cmp(&Text::from(long.as_str())),
            Ordering::Less
        );
        assert_eq!(Text::default(), "");
        assert_eq!(std::mem::size_of::<Text>(), 32);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Text::from_utf8(Bytes::from_static(b"\xff")).is_err());
        assert_eq!(Text::from_utf8(Bytes::from_static(b"ok")).unwrap(), "ok");
    }
}
