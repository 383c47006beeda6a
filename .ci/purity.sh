#!/usr/bin/env bash
# Purity of the sans-IO core: im-proto's normal dependencies hold no runtime or IO crate, and
# its src/ never reads a clock, sleeps, touches std::net or draws global randomness.
# Exits non-zero and names the offence when either is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden_crates='^(tokio|tokio-[a-z-]+|async-std|async-io|async-net|async-executor|smol|futures-io|futures-util|tungstenite|async-tungstenite|mio|socket2|rand|getrandom) '
# Every feature but `tungstenite`, which links tungstenite (and its RNG, for masking keys) for
# one type: a frame tungstenite checked becomes a `Text` unchecked. That feature is held below
# to naming `tungstenite::Utf8Bytes` and nothing else of the crate.
features=$(sed -n '/^\[features\]/,/^\[/p' im-proto/Cargo.toml | grep -oE '^[a-z_-]+ =' | tr -d ' =' \
  | grep -vxE 'default|tungstenite' | paste -sd, -)
deps=$(cargo tree -p im-proto -e normal --features "$features" --prefix none --format '{p}' | sort -u)
if bad=$(grep -E "$forbidden_crates" <<<"$deps"); then
  echo "purity: im-proto depends on runtime/IO/randomness crates:" >&2
  echo "$bad" >&2
  exit 1
fi

forbidden_calls='Instant::now|SystemTime::now|thread::sleep|std::net|tokio::|async_std::|thread_rng|rand::|getrandom|std::fs|std::process'
# The library's lines: each file without its top-level `#[cfg(test)]` modules (unit tests are
# not the library: they may take an instant from the clock to test with).
library() {
  find im-proto/src -name '*.rs' | sort | while read -r f; do
    awk -v f="$f" '/^#\[cfg\(test\)\]/ { skip = 1 } !skip { print f ":" NR ":" $0 } skip && /^}/ { skip = 0 }' "$f"
  done
}
# Comment lines (doc examples included) are the user's code, not the library's.
if bad=$(library | grep -E "$forbidden_calls" | grep -vE '^[^:]+:[0-9]+:\s*//'); then
  echo "purity: im-proto/src calls a clock, sleep, network, filesystem or global RNG:" >&2
  echo "$bad" >&2
  exit 1
fi
if bad=$(grep -rnoE 'tungstenite::[A-Za-z0-9_:]+' im-proto/src | grep -vE ':tungstenite::Utf8Bytes$'); then
  echo "purity: im-proto/src uses tungstenite for more than its Utf8Bytes type:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "purity: im-proto has no IO, clock or global RNG ($(wc -l <<<"$deps") normal deps checked with features $features; tungstenite named for Utf8Bytes only)"
