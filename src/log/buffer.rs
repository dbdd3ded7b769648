//! Buffered stdout for the logs: lines collect in memory and go out in one
//! write when 32 KiB have gathered or 100 ms have passed (like nginx's
//! `access_log … buffer= flush=`), so a busy proxy makes one write system
//! call per few hundred requests instead of one per access-log line.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The process's log buffer, once logging is set up with it.
static INSTALLED: OnceLock<LogBuffer> = OnceLock::new();

/// The buffer tracing should write to; the same one every call.
pub fn installed() -> LogBuffer {
    INSTALLED.get_or_init(LogBuffer::default).clone()
}

/// Writes out what is waiting (at shutdown; a no-op if logs are unbuffered).
pub fn flush() {
    if let Some(buf) = INSTALLED.get() {
        buf.flush();
    }
}

/// Starts the periodic flush on the current tokio runtime, if logs are buffered.
pub fn start_flusher() {
    if let Some(buf) = INSTALLED.get() {
        buf.spawn_flusher();
    }
}

/// Written out as soon as this much has gathered.
const FLUSH_BYTES: usize = 32 * 1024;
/// Written out at least this often while anything is waiting.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The shared buffer; cheap to clone. Give it to tracing as its writer.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    pending: Arc<Mutex<Vec<u8>>>,
    sink: fn(&[u8]),
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::with_sink(write_stdout)
    }
}

impl LogBuffer {
    fn with_sink(sink: fn(&[u8])) -> Self {
        Self {
            pending: Arc::new(Mutex::new(Vec::with_capacity(FLUSH_BYTES * 2))),
            sink,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves whole lines only: keep logging.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes out whatever is waiting.
    pub fn flush(&self) {
        let batch = std::mem::replace(&mut *self.lock(), Vec::with_capacity(FLUSH_BYTES * 2));
        if !batch.is_empty() {
            (self.sink)(&batch);
        }
    }

    /// Flushes every [`FLUSH_EVERY`] for as long as the runtime runs.
    fn spawn_flusher(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.flush();
            }
        });
    }
}

/// What tracing writes one event through (it formats the whole line first
/// and hands it over in one `write`).
#[derive(Debug)]
pub struct LineWriter<'a>(&'a LogBuffer);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut pending = self.0.lock();
            pending.extend_from_slice(buf);
            (pending.len() >= FLUSH_BYTES)
                .then(|| std::mem::replace(&mut *pending, Vec::with_capacity(FLUSH_BYTES * 2)))
        };
        // Written outside the lock, so other threads keep logging meanwhile.
        if let Some(batch) = full {
            (self.0.sink)(&batch);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

fn write_stdout(batch: &[u8]) {
    // A closed stdout is not worth dying for; the lines are lost either way.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(batch);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    static OUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn capture(batch: &[u8]) {
        OUT.lock().expect("out").extend_from_slice(batch);
    }

    #[test]
    fn lines_wait_until_flushed_or_the_buffer_is_full() {
        let buf = LogBuffer::with_sink(capture);
        buf.make_writer().write_all(b"one line\n").expect("write");
        assert!(OUT.lock().expect("out").is_empty(), "kept until a flush");
        buf.flush();
        assert_eq!(&*OUT.lock().expect("out"), b"one line\n");
        OUT.lock().expect("out").clear();
        let line = [b'x'; 100];
        let lines = FLUSH_BYTES / line.len() + 1;
        for _ in 0..lines {
            buf.make_writer().write_all(&line).expect("write");
        }
        let written = OUT.lock().expect("out").len();
        assert_eq!(
            written,
            lines * line.len(),
            "the line that fills it writes all out at once"
        );
        assert!(buf.lock().is_empty());
    }
}
