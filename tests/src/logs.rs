//! What a client writes to `tracing`, captured for a test to read.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `tracing_subscriber` writer into a shared buffer.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Capture everything logged at `level` and above, process-wide, from now on (one
    /// subscriber per test binary: call it once).
    pub fn install(level: tracing::Level) -> Self {
        let log = LogCapture::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .init();
        log
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
