use super::*;

#[test]
fn dates_from_days_since_the_epoch() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(59), (1970, 3, 1));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    assert_eq!(civil_from_days(24_837), (2038, 1, 1));
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    let t = UNIX_EPOCH + std::time::Duration::from_micros(1_764_613_305_000_042);
    let mut line = String::new();
    timestamp(t, &mut line);
    assert_eq!(line, "2025-12-01T18:21:45.000042Z");
    line.clear();
    timestamp(t + std::time::Duration::from_secs(1), &mut line);
    assert_eq!(
        line, "2025-12-01T18:21:46.000042Z",
        "a new second is formatted anew"
    );
}

#[test]
fn values_are_plain_only_when_they_cannot_forge_a_field() {
    for (value, written) in [
        ("alpha", "alpha"),
        (
            "/v3/catalog/products/{product_id}",
            "/v3/catalog/products/{product_id}",
        ),
        ("", "\"\""),
        ("two words", "\"two words\""),
        ("a=b", "\"a=b\""),
        ("line\nbreak", "\"line\\nbreak\""),
        ("quote\"", "\"quote\\\"\""),
        ("caf\u{e9}", "\"caf\u{e9}\""),
    ] {
        let mut line = String::new();
        push_value(&mut line, value);
        assert_eq!(line, written, "{value:?}");
    }
}

#[test]
fn floats_print_as_ryu_prints_them() {
    let ryu = |v: f64| {
        if v.is_finite() {
            ryu::Buffer::new().format_finite(v).to_owned()
        } else {
            format!("{v}")
        }
    };
    let mut values: Vec<f64> = (0..200_000u64).map(|n| n as f64 / 1000.0).collect();
    values.extend((0..2_000u64).map(|n| (n * 7_919_777) as f64 / 1000.0));
    values.extend([
        -0.0,
        -1.5,
        0.0001,
        1e-7,
        12.3456,
        0.1 + 0.2,
        1e15,
        1e16,
        1e300,
        2.5e-3,
        1_125_899_906_842.623,
        f64::NAN,
        f64::INFINITY,
    ]);
    for v in values {
        let mut out = String::new();
        push_f64(&mut out, v);
        assert_eq!(out, ryu(v), "{v:e}");
    }
}
