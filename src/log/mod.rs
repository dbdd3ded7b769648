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

/// Installs the global subscriber; call once, before any runtime starts.
pub fn init(format: Format) {
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
