//! The text log line, in tracing-subscriber's familiar shape
//! (`2026-12-01T18:21:45.455095Z  INFO bcgate::access: key=value …`) but
//! written without a `fmt` pass per field: one access-log line per request
//! is on the hot path. A value that needs no quoting is written as it is;
//! anything else is quoted and escaped like `Debug`, so no value can forge
//! a line break or another field.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format for `--log-format text`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        BUFFERS.with(|cell| {
            let (line, fields) = &mut *cell.borrow_mut();
            line.clear();
            fields.clear();
            timestamp(SystemTime::now(), line);
            let meta = event.metadata();
            line.push_str(level(meta.level()));
            line.push_str(meta.target());
            line.push(':');
            // The message goes straight after the target, the other fields after it.
            event.record(&mut Fields {
                message: line,
                fields,
            });
            line.push_str(fields);
            line.push('\n');
            writer.write_str(line)
        })
    }
}

thread_local! {
    /// The line and its fields while they are formatted, reused.
    static BUFFERS: RefCell<(String, String)> =
        RefCell::new((String::with_capacity(512), String::with_capacity(512)));
    /// The formatted `YYYY-MM-DDTHH:MM:SS` of the last second seen.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

struct Fields<'a> {
    message: &'a mut String,
    fields: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        self.fields.push(' ');
        self.fields.push_str(field.name());
        self.fields.push('=');
        self.fields
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push(' ');
            self.message.push_str(value);
            return;
        }
        push_value(self.key(field), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        push_f64(self.key(field), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field)
            .push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, " {value:?}");
            return;
        }
        // `%value` and `?value` fields: format once, then quote if needed.
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        push_value(self.key(field), &text);
    }
}

/// A float as `ryu` prints it (the shortest decimal that reads back),
/// with integer arithmetic for the access log's milliseconds.
fn push_f64(out: &mut String, value: f64) {
    if let Some(thousandths) = as_thousandths(value) {
        // The access log's milliseconds (`1.234`): integers, no float formatting.
        out.push_str(itoa::Buffer::new().format(thousandths / 1000));
        out.push('.');
        let frac = thousandths % 1000;
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let keep = match digits {
            [_, 0, 0] => 1,
            [_, _, 0] => 2,
            _ => 3,
        };
        for d in &digits[..keep] {
            out.push(char::from(b'0' + *d as u8));
        }
    } else if value.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(value));
    } else {
        let _ = write!(out, "{value}");
    }
}

/// `value` × 1000 when that is a whole number below 2^50, so that
/// `value` is exactly some `n / 1000` and prints as its shortest decimal
/// (what `ryu` would print) with at most three decimals.
fn as_thousandths(value: f64) -> Option<u64> {
    let scaled = value * 1000.0;
    let whole = scaled.round();
    let exact = value.is_sign_positive()
        && (0.0..1_125_899_906_842_624.0).contains(&whole)
        && whole / 1000.0 == value;
    exact.then_some(whole as u64)
}

/// A value as it is when it cannot be mistaken for more than one value,
/// else quoted with `Debug`'s escapes.
fn push_value(line: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
    if plain {
        line.push_str(value);
    } else {
        let _ = write!(line, "{value:?}");
    }
}

/// RFC 3339 UTC with microseconds; the date and time of day are formatted
/// once a second.
pub(crate) fn timestamp(now: SystemTime, line: &mut String) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let (y, m, d) = civil_from_days(secs / 86_400);
            let t = secs % 86_400;
            let _ = write!(
                cached.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                t / 3600,
                t / 60 % 60,
                t % 60
            );
            cached.0 = secs;
        }
        line.push_str(&cached.1);
    });
    let micros = since.subsec_micros();
    line.push('.');
    let digits = itoa::Buffer::new().format(micros).len();
    for _ in digits..6 {
        line.push('0');
    }
    line.push_str(itoa::Buffer::new().format(micros));
    line.push('Z');
}

/// The proleptic Gregorian date of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests;
