//! Metric names, each declared once with what it counts. Labels are bounded
//! by config and code (never a raw path or a key).

/// Requests answered, by `code` (`forwarded` or an error code) and `status`.
pub const REQUESTS_TOTAL: &str = "bcgate_requests_total";

pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "Requests answered, by outcome code and HTTP status."
    );
}

pub fn request_done(code: &'static str, status: u16) {
    metrics::counter!(REQUESTS_TOTAL, "code" => code, "status" => status.to_string()).increment(1);
}
