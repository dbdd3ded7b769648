//! Logging: tracing events to stdout, as text ([`text`], one line an event)
//! or JSON, written in batches ([`buffer`]). `BCGATE_LOG` is the filter.

pub mod buffer;
pub mod text;

pub use buffer::{flush, start_flusher};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `TIME LEVEL target: message key=value …`
    Text,
    /// One JSON object a line, fields at the top level.
    Json,
}

/// The format [`init`] installed (text until then).
static FORMAT: std::sync::OnceLock<Format> = std::sync::OnceLock::new();

/// Installs the global subscriber; call once, before any runtime starts.
pub fn init(format: Format) {
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_env("BCGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(buffer::installed());
    match format {
        Format::Text => logs.event_format(text::TextFormat).init(),
        Format::Json => logs.json().flatten_event(true).init(),
    }
}

/// Says a listener is bound: `bcgate: {listener} listening on {url}` in
/// text, a JSON line with `listener` and `url` fields in JSON, so every line
/// on stdout is in the chosen format. Scripts and orchestrators wait for it,
/// so it is written at once (after the lines before it) whatever
/// `BCGATE_LOG` filters.
pub fn announce(listener: &str, url: &str) {
    use std::io::Write as _;
    use tracing_subscriber::fmt::MakeWriter as _;
    let message = format!("bcgate: {listener} listening on {url}");
    let mut line = match FORMAT.get() {
        Some(Format::Json) => {
            let mut timestamp = String::new();
            text::timestamp(std::time::SystemTime::now(), &mut timestamp);
            serde_json::json!({
                "timestamp": timestamp,
                "level": "INFO",
                "message": message,
                "listener": listener,
                "url": url,
                "target": "bcgate::server",
            })
            .to_string()
        }
        _ => message,
    };
    line.push('\n');
    let buffer = buffer::installed();
    let _ = buffer.make_writer().write_all(line.as_bytes());
    buffer.flush();
}
