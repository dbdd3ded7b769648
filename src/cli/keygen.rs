//! `bcgate keygen`: a new client key and its digest.

use crate::identify::{key_sha256, new_key};

pub(super) fn keygen(json: bool) -> Result<String, String> {
    let key = new_key()?;
    if json {
        let mut line =
            serde_json::json!({"key": key.as_str(), "key_sha256": key_sha256(&key)}).to_string();
        line.push('\n');
        return Ok(line);
    }
    Ok(format!(
        "key:        {key}\nkey_sha256: {}\n\nGive the key to the service (as its X-Auth-Token); put key_sha256 in its [[clients]] entry.\n",
        key_sha256(&key)
    ))
}
