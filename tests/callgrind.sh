#!/usr/bin/env bash
# Instructions per received message, im against the raw loop of the same vendor, and where they
# differ, by function: the method behind docs/PERFORMANCE.md's counts.
#
#   bash tests/callgrind.sh livechat|mqtt|socketio|nats [TOP]
#   SIM=1 bash tests/callgrind.sh ...   (also simulated cache misses and branch mispredictions)
#
# Each side runs twice under callgrind (`bench --only-vendor` / `bench --only throughput`, 20,000
# then 40,000 messages); the difference of the two totals over 20,000 is the cost of one message,
# with whatever a run costs once (start-up, connecting, the source's own encoding of its frames)
# cancelled out. Needs valgrind (`apt-get install valgrind`); about two minutes.
set -euo pipefail

vendor=${1:?usage: bash tests/callgrind.sh livechat|mqtt|socketio|nats [TOP]}
top=${2:-25}
case $vendor in
livechat | mqtt | socketio | nats) ;;
*) echo "unknown vendor $vendor (livechat, mqtt, socketio, nats)" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

cd "$(dirname "$0")/.."
cargo build --release -q -p im-tests --bin bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # side messages
    local args
    if [ "$vendor" = livechat ]; then args=(--only throughput "$1" "$2"); else args=(--only-vendor "$vendor" "$1" "$2"); fi
    local sim=()
    # Where instructions are equal and time is not: this VM has no hardware counters.
    [ "${SIM:-0}" = 1 ] && sim=(--cache-sim=yes --branch-sim=yes)
    valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$out/$1.$2" ./target/release/bench "${args[@]}" >/dev/null 2>&1
    grep -E '^(events|summary):' "$out/$1.$2" >"$out/$1.$2.summary"
    # Exclusive instructions per function, as "count<TAB>function".
    callgrind_annotate --inclusive=no --show=Ir --threshold=100 "$out/$1.$2" 2>/dev/null |
        sed -nE 's/^ *([0-9,]+) +(\([^)]*\) +)?(.*)$/\1\t\3/p' | tr -d , >"$out/$1.$2.txt"
}
for side in im raw; do
    run "$side" 20000
    run "$side" 40000
done

awk -F'\t' -v top="$top" -v vendor="$vendor" '
    { split(FILENAME, p, "/"); key = p[length(p)]; sub(/\.txt$/, "", key)
      name = $2; sub(/ \[.*$/, "", name); cost[key, name] += $1; names[name] = 1 }
    function per(side, n) { return (cost[side ".40000", n] - cost[side ".20000", n]) / 20000 }
    END {
        for (n in names) if (n ~ /PROGRAM TOTALS/) { total = n }
        printf "%s: instructions per message, im %.0f, raw %.0f (%+.0f)\n", vendor,
            per("im", total), per("raw", total), per("im", total) - per("raw", total)
        print "  im-raw       im      raw  function (the largest differences first)"
        sorter = "sort -t\"|\" -k1,1 -g -r | head -n " top " | cut -d\"|\" -f2-"
        for (n in names) {
            if (n == total) continue
            d = per("im", n) - per("raw", n); a = d < 0 ? -d : d
            if (a >= 8) printf "%f|%+8.0f %8.0f %8.0f  %s\n", a, d, per("im", n), per("raw", n), substr(n, 1, 110) | sorter
        }
        close(sorter)
    }' "$out"/im.20000.txt "$out"/im.40000.txt "$out"/raw.20000.txt "$out"/raw.40000.txt

if [ "${SIM:-0}" = 1 ]; then
    # Per message, as above: L1 instruction and data misses (read, write), last-level misses,
    # conditional and indirect branches mispredicted, by callgrind's model of this machine's caches.
    awk '
        /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i; next }
        { split(FILENAME, p, "/"); key = p[length(p)]; sub(/\.summary$/, "", key)
          for (i = 2; i <= NF; i++) v[key, name[i]] = $i }
        function per(side, e) { return (v[side ".40000", e] - v[side ".20000", e]) / 20000 }
        END {
            printf "simulated, per message:   "
            split("I1mr D1mr D1mw DLmr DLmw Bcm Bim", ev, " ")
            for (i = 1; i <= 7; i++) printf "%8s", ev[i]; print ""
            for (s = 1; s <= 2; s++) {
                side = s == 1 ? "im" : "raw"; printf "  %-23s", side
                for (i = 1; i <= 7; i++) printf "%8.2f", per(side, ev[i]); print ""
            }
        }' "$out"/im.20000.summary "$out"/im.40000.summary "$out"/raw.20000.summary "$out"/raw.40000.summary
fi
