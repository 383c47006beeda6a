//! A server frame's envelope: the fields the client reads, borrowed from the frame.
//!
//! Two decoders produce it: the one-pass scanner (`scan`) for the frames servers actually send
//! (no escapes, nothing odd), and serde, here, for anything else and every error (the livechat
//! module tries them in that order). The scanner only ever answers what serde would have
//! answered (`scan_agrees_with_serde` below).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::{check_json_depth, ProtocolError};

/// The envelope: `{"cmd", "msg_id", "room", "result": {...}}`; raw JSON values as text.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct Inbound<'a> {
    #[serde(borrow)]
    pub cmd: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    pub msg_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub room: Option<Str<'a>>,
    /// Absent and `null` both read as the empty result.
    #[serde(default, borrow, deserialize_with = "result_or_empty")]
    pub result: InboundResult<'a>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct InboundResult<'a> {
    #[serde(default, borrow)]
    pub seed: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    pub message: Option<&'a str>,
    #[serde(default, borrow)]
    pub room: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    pub msg_id: Option<&'a str>,
    #[serde(default, borrow, deserialize_with = "raw_text")]
    pub from: Option<&'a str>,
    #[serde(default, borrow)]
    pub reason: Option<Str<'a>>,
    #[serde(default)]
    pub after_ms: Option<u64>,
    /// A chat message's place in its room (im's dialect): the client's resume point.
    #[serde(default)]
    pub seq: Option<u64>,
}

impl<'a> Inbound<'a> {
    /// The reference decoder, and the one that explains errors.
    pub fn parse_with_serde(text: &'a str, max_depth: usize) -> Result<Self, ProtocolError> {
        check_json_depth(text, max_depth)?;
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
    }
}

fn result_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<InboundResult<'de>, D::Error> {
    Ok(Option::<InboundResult<'de>>::deserialize(d)?.unwrap_or_default())
}

/// Any JSON value but `null`, as the text the frame has for it (`Option<&RawValue>`'s reading).
fn raw_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    Ok(Option::<&'de RawValue>::deserialize(d)?.map(RawValue::get))
}

/// A JSON string, borrowed from the frame unless it holds escapes. (serde's own `Cow<str>`
/// always allocates inside an `Option`: four allocations per chat message.)
#[derive(Debug, PartialEq)]
pub(super) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl Str<'_> {
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    //! The scanner is only an optimisation: wherever it answers, serde must answer the same.

    use proptest::prelude::*;

    use super::*;
    use crate::protocols::json_scan::arb::{damaged, proof_config, value, ws};
    use crate::protocols::livechat::scan;

    const DEPTH: usize = 32;

    fn both(text: &str) -> (Option<Inbound<'_>>, Result<Inbound<'_>, ProtocolError>) {
        (
            scan::envelope(text, DEPTH),
            Inbound::parse_with_serde(text, DEPTH),
        )
    }

    #[test]
    fn frames_servers_send_take_the_fast_path() {
        for text in [
            r#"{"cmd":"chat","result":{"room":"b","message":{"n":7,"p":"xxxx"}}}"#,
            r#"{"cmd":"auth1","msg_id":3,"result":{"seed":"abc"}}"#,
            r#"{"cmd":"ack","msg_id":"k-1"}"#,
            r#"{"cmd":"joined","room":"lobby"}"#,
            r#"{"cmd":"wd_heartbeat"}"#,
            r#"{"cmd":"reconnect","result":{"reason":"deploy","after_ms":1500}}"#,
            r#" { "cmd" : "chat" , "result" : { "message" : [1, -2.5e+3, true, null, {}, []] ,
                "from" : {"id": 9}, "extra": "\"quoted\" \u00e9 \n" } , "x": false } "#,
            r#"{"cmd":"chat","result":{"message":"a \"quote\" and a \\ backslash"}}"#,
        ] {
            let (fast, slow) = both(text);
            let fast = fast.unwrap_or_else(|| panic!("declined {text}"));
            assert_eq!(fast, slow.unwrap(), "{text}");
        }
    }

    #[test]
    fn an_absent_or_null_result_reads_as_empty() {
        for text in [r#"{"cmd":"auth_ok"}"#, r#"{"cmd":"auth_ok","result":null}"#] {
            let slow = Inbound::parse_with_serde(text, DEPTH).unwrap();
            assert_eq!(slow.result, InboundResult::default(), "{text}");
        }
    }

    #[test]
    fn what_serde_must_decide_is_declined() {
        for text in [
            r#"{"cmd":"ch\u0061t"}"#,         // escape in a returned string
            r#"{"cmd":"chat","cmd":"chat"}"#, // duplicate field: serde's error
            r#"{"cmd":"chat","result":{},"result":{}}"#,
            r#"{"cmd":null}"#,                 // null field
            r#"{"cmd":"chat","result":null}"#, // null result
            r#"{"cmd":"x","result":{"after_ms":1.5}}"#,
            r#"{"cmd":"x","result":{"after_ms":18446744073709551616}}"#,
            r#"{"cmd":"x"} trailing"#,
            r#"{"cmd":"x","m":01}"#,
            r#"{"cmd":"x","m":"\x"}"#,
            r#"{"cmd":"x","m":"\u12g4"}"#,
            "{\"cmd\":\"x\",\"m\":\"\u{1}\"}", // control character
            r#"{"cmd":"x","m":[1,]}"#,
            r#"["chat"]"#,
        ] {
            assert!(scan::envelope(text, DEPTH).is_none(), "accepted {text}");
        }
        let deep = format!(r#"{{"cmd":"x","m":{}{}}}"#, "[".repeat(40), "]".repeat(40));
        assert!(scan::envelope(&deep, DEPTH).is_none());
        assert!(Inbound::parse_with_serde(&deep, DEPTH).is_err());
    }

    fn key() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            Just("cmd"),
            Just("msg_id"),
            Just("room"),
            Just("result"),
            Just("seed"),
            Just("message"),
            Just("from"),
            Just("reason"),
            Just("after_ms"),
            Just("seq"),
            Just("x"),
            Just("c\\u006dd"),
            Just(""),
        ]
        .prop_map(|k| format!("\"{k}\""))
    }

    /// A JSON-ish frame, sometimes damaged by one edit.
    fn frame() -> impl Strategy<Value = String> {
        let envelope = prop::collection::vec((ws(), key(), ws(), value(key()), ws()), 0..6)
            .prop_map(|m| {
                let members: Vec<String> = m
                    .into_iter()
                    .map(|(a, k, b, v, c)| format!("{a}{k}{b}:{v}{c}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            });
        damaged(envelope)
    }

    proptest! {
        #![proptest_config(proof_config())]

        #[test]
        fn scan_agrees_with_serde(text in frame(), depth in prop_oneof![3 => Just(DEPTH), 1 => 0usize..6]) {
            if let Some(fast) = scan::envelope(&text, depth) {
                match Inbound::parse_with_serde(&text, depth) {
                    Ok(slow) => prop_assert_eq!(fast, slow),
                    Err(e) => prop_assert!(false, "the scanner accepted what serde refuses ({e}): {text}"),
                }
            }
        }
    }
}
