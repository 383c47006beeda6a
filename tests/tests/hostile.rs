//! A hostile server (its own process: `livechat-server --hostile`) against an im-tokio client
//! that reads slowly: garbage, binary where text is expected, 10,000 unknown commands, 10,000
//! levels of JSON, a 10 MiB frame, a flood of 50,000 messages faster than the consumer reads,
//! then invalid UTF-8. The client must report every bad frame as a typed error, deliver every
//! valid message, keep its memory bounded (backpressure instead of buffering), and after the
//! invalid UTF-8 (which RFC 6455 says fails the connection) reconnect and go on.

use std::time::{Duration, Instant};

use im_tests::server::{ServerProcess, HOSTILE_FLOOD, HOSTILE_UNKNOWN};
use im_tokio::{Client, Event, LiveChat, ProtocolError, ReconnectPolicy, ReportedError};

fn rss_kib() -> u64 {
    im_tests::wait::rss_bytes() / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_cannot_crash_stall_or_bloat_the_client() {
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_livechat-server"),
        &["--key", "k", "--hostile"],
    )
    .unwrap();
    let url = server.url().to_owned();

    let baseline = rss_kib();
    let (client, mut events) = Client::builder()
        .endpoint(url)
        .protocol(LiveChat::new(1, 1, "k"))
        .reconnect(ReconnectPolicy::default().initial(Duration::from_millis(50)))
        .event_capacity(64)
        .connect()
        .unwrap();

    let (mut malformed, mut binary, mut unknown, mut deep, mut large, mut utf8) =
        (0, 0, 0, 0, 0, 0);
    let mut flood = 0usize;
    let mut markers = Vec::new();
    let mut peak = baseline;
    let mut read = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while markers.len() < 2 {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("the client kept delivering")
            .expect("the client did not close");
        read += 1;
        if read.is_multiple_of(1_000) {
            peak = peak.max(rss_kib());
            // A slow consumer: the server floods faster than this loop reads.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match event {
            Event::Error(ReportedError::Protocol(e)) => match e {
                ProtocolError::Malformed(_) => malformed += 1,
                ProtocolError::UnexpectedFrame(_) => binary += 1,
                ProtocolError::Violation(_) => unknown += 1,
                ProtocolError::TooDeep { .. } => deep += 1,
                ProtocolError::TooLarge { .. } => large += 1,
                ProtocolError::InvalidUtf8 => utf8 += 1,
                other => panic!("unexpected error {other:?}"),
            },
            Event::Message(m) => {
                let v: serde_json::Value = m.body.decode().unwrap();
                if let Some(text) = v["text"].as_str() {
                    markers.push(text.to_owned());
                } else {
                    assert_eq!(
                        v["n"].as_u64(),
                        Some(flood as u64),
                        "flood in order, none lost"
                    );
                    flood += 1;
                }
            }
            Event::Closed { reason } => panic!("closed: {reason:?}"),
            _ => {}
        }
    }
    peak = peak.max(rss_kib());
    client.close().await;
    let growth_mib = (peak.saturating_sub(baseline)) as f64 / 1024.0;
    println!(
        "hostile server: {malformed} malformed, {binary} binary, {unknown} unknown commands, \
         {deep} too deep, {large} too large, {utf8} invalid UTF-8; {flood} flood messages and \
         markers {markers:?} delivered; client RSS {baseline} KiB -> peak {peak} KiB \
         (+{growth_mib:.1} MiB) during the flood"
    );
    assert_eq!((malformed, binary, deep, large, utf8), (1, 1, 1, 1, 1));
    assert_eq!(unknown, HOSTILE_UNKNOWN);
    assert_eq!(flood, HOSTILE_FLOOD);
    assert_eq!(
        markers,
        ["marker-0", "marker-1"],
        "the next valid message arrives, also after the reconnect"
    );
    // The 10 MiB frame is read once (and its text copied once) before it is discarded; the
    // flood itself must not accumulate: backpressure keeps it in the server's socket.
    assert!(
        growth_mib < 64.0,
        "client memory grew by {growth_mib:.1} MiB"
    );
}
