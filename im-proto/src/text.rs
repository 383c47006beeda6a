//! Text shared instead of copied: a received frame, and the channel and body a decoder takes
//! out of it.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

/// Immutable UTF-8 text whose clones and slices share one buffer.
///
/// A text frame arrives as a `Text`; a decoder hands on the message's channel and body as
/// slices of it ([`Text::slice_ref`]), so a chat message costs no copy and no allocation
/// between the socket and the user.
///
/// Like [`bytes::Bytes`], a slice keeps its whole buffer alive. To keep a small part of a large
/// message for a long time, copy it out (`String::from(text.as_str())`).
#[derive(Clone, Default, PartialOrd, Ord)]
pub struct Text(ByteString);

impl Text {
    pub const fn from_static(text: &'static str) -> Text {
        Text(ByteString::from_static(text))
    }

    /// Take bytes that must be UTF-8 (a WebSocket text frame), without copying them.
    pub fn from_utf8(bytes: Bytes) -> Result<Text, std::str::Utf8Error> {
        ByteString::try_from(bytes).map(Text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `part` as a `Text` sharing this one's buffer when it lies within it (a `&str` a parser
    /// borrowed from [`as_str`](Self::as_str)); a copy otherwise.
    pub fn slice_ref(&self, part: &str) -> Text {
        let (base, start) = (self.as_str().as_ptr() as usize, part.as_ptr() as usize);
        let within = start >= base && start + part.len() <= base + self.len();
        if within && !part.is_empty() {
            Text(self.0.slice_ref(part))
        } else {
            Text::from(part)
        }
    }

    /// The bytes, without copying them.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
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
        Text(s.into())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.into())
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0.into()
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
    fn slices_share_the_buffer_and_foreign_parts_are_copied() {
        let frame = Text::from(String::from(r#"{"room":"b"}"#));
        let room = &frame.as_str()[9..10];
        let shared = frame.slice_ref(room);
        assert_eq!(shared, "b");
        assert_eq!(shared.as_ptr(), room.as_ptr());
        let foreign = frame.slice_ref("b");
        assert_eq!(foreign, "b");
        assert_ne!(foreign.as_ptr(), room.as_ptr());
        assert_eq!(frame.slice_ref(""), "");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Text::from_utf8(Bytes::from_static(b"\xff")).is_err());
        assert_eq!(Text::from_utf8(Bytes::from_static(b"ok")).unwrap(), "ok");
    }
}
