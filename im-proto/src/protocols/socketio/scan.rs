//! A Socket.IO event's arguments in one pass, for the events servers actually send:
//! `["name", body]`, and `["name", body, "offset"]` under connection state recovery.
//!
//! Reading them with serde walked the array twice (once into a `Vec<&RawValue>`, once more for
//! the name) and copied the body out of the frame: most of what the client spent per event
//! (docs/PERFORMANCE.md). This reads the array once with the JSON cursor of `json_scan`, and the
//! body stays a part of the frame. It declines (`None`) whatever it does not decode exactly as
//! the serde path does: a name or offset with an escape, more arguments than those, nesting
//! deeper than the limit. A declined event goes to serde, which also explains every error;
//! `tests::scan_agrees_with_serde` holds the proof that the two agree.

use crate::protocols::json_scan::Cursor;

/// An event's parts, borrowed from the text scanned.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Event<'a> {
    pub name: &'a str,
    /// The one argument, as written (JSON the scanner checked).
    pub body: &'a str,
    /// The recovery offset: a last string argument, when `with_offset` asked for one.
    pub offset: Option<&'a str>,
}

/// The event array `text` (after `42`, the namespace and the ack id). With `with_offset`, the
/// event must end with a string argument, the session's offset; one argument besides the name
/// and the offset otherwise (anything else is declined).
pub(super) fn event(text: &str, max_depth: usize, with_offset: bool) -> Option<Event<'_>> {
    let mut c = Cursor::new(text, max_depth);
    if c.max_depth < 1 {
        return None;
    }
    c.expect(b'[')?;
    let name = c.plain_str()?;
    c.expect(b',')?;
    c.whitespace();
    let start = c.at;
    c.skip(2)?;
    let body = text.get(start..c.at)?;
    let offset = match (c.next_token()?, with_offset) {
        (b']', false) => None,
        (b',', true) => {
            let offset = c.plain_str()?;
            c.expect(b']')?;
            Some(offset)
        }
        _ => return None,
    };
    c.whitespace();
    (c.at == text.len()).then_some(Event { name, body, offset })
}

#[cfg(test)]
mod tests {
    //! The scanner is only an optimisation: wherever it answers, serde must answer the same, and
    //! the depth check it stands in for must pass.

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    use super::event;
    use crate::protocol::check_json_depth;
    use crate::protocols::json_scan::arb::{damaged, proof_config, scalar, string_lit, value, ws};
    use crate::protocols::socketio::event_with_serde;

    const DEPTH: usize = 32;

    fn agree(text: &str, depth: usize, with_offset: bool) -> Result<bool, TestCaseError> {
        let Some(fast) = event(text, depth, with_offset) else {
            return Ok(false);
        };
        prop_assert!(
            check_json_depth(text, depth).is_ok(),
            "the scanner accepted what is too deep: {text}"
        );
        match event_with_serde(text, with_offset) {
            Ok((name, body, offset)) => {
                prop_assert_eq!(fast.name, name.as_str(), "{}", text);
                prop_assert_eq!(fast.body, body.get(), "{}", text);
                prop_assert_eq!(fast.offset, offset.as_deref(), "{}", text);
            }
            Err(e) => prop_assert!(
                false,
                "the scanner accepted what serde refuses ({e}): {text}"
            ),
        }
        Ok(true)
    }

    #[test]
    fn events_servers_send_take_the_fast_path() {
        for (text, with_offset) in [
            (r#"["blast:1",{"n":7,"pad":"xxxx"}]"#, false),
            (r#"["chat","hello"]"#, false),
            (r#"["chat",[1,2,{"a":null}]]"#, false),
            (r#"["chat",{"n":1},"1700000000000-0"]"#, true),
            (
                r#" [ "chat" , {"text":"a \"quote\" \u00e9"} , "0-1" ] "#,
                true,
            ),
            (r#"["n",-1.5e+3]"#, false),
        ] {
            match agree(text, DEPTH, with_offset) {
                Ok(fast) => assert!(fast, "declined {text}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn what_serde_must_decide_is_declined() {
        for (text, with_offset) in [
            (r#"["ch\u0061t",1]"#, false),     // escape in the name
            (r#"["chat",1,2]"#, false),        // several arguments: an array body
            (r#"["chat"]"#, false),            // no argument
            (r#"["chat","only"]"#, true),      // all offset under recovery
            (r#"["chat",1]"#, true),           // no offset under recovery
            (r#"["chat",1,2]"#, true),         // an offset that is not a string
            (r#"["chat",1,"o\u0031"]"#, true), // escape in the offset
            (r#"["chat",01]"#, false),
            (r#"["chat",1] x"#, false),
            (r#"[1,2]"#, false),
            (r#"{"chat":1}"#, false),
        ] {
            assert!(event(text, DEPTH, with_offset).is_none(), "accepted {text}");
        }
        let deep = format!(r#"["e",{}{}]"#, "[".repeat(40), "]".repeat(40));
        assert!(event(&deep, DEPTH, false).is_none());
        assert!(check_json_depth(&deep, DEPTH).is_err());
        assert!(event(r#"["e",1]"#, 0, false).is_none());
    }

    fn key() -> impl Strategy<Value = String> + Clone {
        prop_oneof![Just("n"), Just("text"), Just(""), Just("a\\u0062")]
            .prop_map(|k| format!("\"{k}\""))
    }

    /// An event array as servers send one (a name, a body, perhaps an offset), or one of many
    /// shapes around it, sometimes damaged by one edit.
    fn event_text() -> impl Strategy<Value = String> {
        let name = prop_oneof![6 => "\"[a-z:]{1,8}\"".boxed(), 2 => string_lit().boxed(), 1 => scalar().boxed()];
        let arg = || (ws(), value(key()), ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}"));
        let offset = prop_oneof![3 => "\"[0-9]{1,13}-[0-9]\"".boxed(), 1 => string_lit().boxed()];
        let args = prop_oneof![
            // A body; a body and an offset (recovery); anything.
            3 => arg().prop_map(|a| vec![a]).boxed(),
            3 => (arg(), offset).prop_map(|(a, o)| vec![a, o]).boxed(),
            1 => prop::collection::vec(arg(), 0..4).boxed(),
        ];
        let array = (ws(), name, args).prop_map(|(w, name, args)| {
            let mut items = vec![format!("{w}{name}")];
            items.extend(args);
            format!("[{}]", items.join(","))
        });
        damaged(array)
    }

    #[test]
    fn the_generator_reaches_both_paths() {
        // A proof over inputs the scanner always declines would prove nothing.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut fast, mut declined) = (0, 0);
        for _ in 0..2000 {
            let text = ValueTree::current(&event_text().new_tree(&mut runner).unwrap());
            for with_offset in [false, true] {
                match event(&text, DEPTH, with_offset) {
                    Some(_) => fast += 1,
                    None => declined += 1,
                }
            }
        }
        assert!(
            fast > 400 && declined > 400,
            "fast {fast}, declined {declined}"
        );
    }

    proptest! {
        #![proptest_config(proof_config())]

        #[test]
        fn scan_agrees_with_serde(
            text in event_text(),
            depth in prop_oneof![3 => Just(DEPTH), 1 => 0usize..6],
            with_offset in any::<bool>(),
        ) {
            agree(&text, depth, with_offset)?;
        }
    }
}
