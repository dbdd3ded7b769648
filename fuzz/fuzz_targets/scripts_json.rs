//! The scripts rule and the strict JSON parser:
//! `script_needs_checkout_content` and `parse_strict_json`.
//!
//! Invariants, checked against serde_json's own (lenient) parse:
//! - a body serde_json reads as an object whose `visibility` is anything but
//!   `storefront` or `order_confirmation` is never Ok(false) (fail closed);
//! - Ok(false) only for an object stating one of those two, or stating none
//!   on a create;
//! - `parse_strict_json` accepts only what serde_json accepts, with the same
//!   value.
#![no_main]

use bcgate::policy::body::{parse_strict_json, script_needs_checkout_content};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let lenient: Option<Value> = serde_json::from_slice(data).ok();
    if let Ok(strict) = parse_strict_json(data) {
        assert_eq!(
            Some(&strict),
            lenient.as_ref(),
            "the strict parser read something serde_json reads differently"
        );
    }
    for is_update in [false, true] {
        let result = script_needs_checkout_content(data, is_update);
        if result.is_ok() {
            assert!(
                parse_strict_json(data).is_ok(),
                "a script body that is not strict JSON"
            );
        }
        let visibility = match &lenient {
            Some(Value::Object(obj)) => obj.get("visibility"),
            _ => None,
        };
        let harmless = match visibility {
            Some(Value::String(v)) => v == "storefront" || v == "order_confirmation",
            Some(_) => false,
            None => !is_update,
        };
        if result == Ok(false) {
            assert!(
                matches!(lenient, Some(Value::Object(_))) && harmless,
                "Ok(false) for visibility {visibility:?} (update: {is_update})"
            );
        }
        if let Some(Value::Object(_)) = lenient
            && !harmless
        {
            assert!(
                result != Ok(false),
                "visibility {visibility:?} (update: {is_update}) passed without Checkout Content"
            );
        }
    }
});
