//! Observations in the token store's Redis (`[token_store] kind = "redis"`
//! and no `learn.path`), shared by every replica: each replica adds what it
//! counted since its last write, so `bcgate recommend` sees all of them.
//!
//! Four hashes, one field per entry (the JSON array `[client, method,
//! route, write, checkout_content]` for the api family, and with `family`
//! and the storefront grant bits appended for the others): [`META`] holds the needs and first
//! sighting (set once, by the first replica to write the entry), [`COUNT`]
//! and [`WOULD_DENY`] are incremented (`HINCRBY`), [`LAST_SEEN`] is set.
//! One write is a `MULTI`. Nothing secret is stored, so the values are plain
//! JSON and numbers, not sealed like the tokens.

use std::time::Duration;

use redis::Commands;
use serde::{Deserialize, Serialize};

use super::Observation;
use crate::family::Family;
use crate::token_store::redact_url;

pub const META: &str = "bcgate:learn:meta";
pub const COUNT: &str = "bcgate:learn:count";
pub const WOULD_DENY: &str = "bcgate:learn:would_deny";
pub const LAST_SEEN: &str = "bcgate:learn:last_seen";
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What one replica counted of one entry since its last write.
#[derive(Debug)]
pub struct Delta<'a> {
    pub client: &'a str,
    pub family: Family,
    /// [`super::Seen::storefront`].
    pub storefront: u8,
    pub method: &'a str,
    pub route: &'a str,
    pub write: bool,
    pub checkout_content: bool,
    pub needs: &'a [Vec<String>],
    pub first_seen: u64,
    pub count: u64,
    pub would_deny: u64,
    /// Whether an earlier write of this replica put the entry in Redis.
    pub known: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    needs: Vec<Vec<String>>,
    first_seen: u64,
}

type Field = (String, String, String, bool, bool);
/// A field of another family than api.
type FamilyField = (String, String, String, bool, bool, String, u8);

#[derive(Debug)]
pub struct RedisLearn {
    client: redis::Client,
    /// The URL without credentials, for messages.
    location: String,
}

impl RedisLearn {
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("redis {}: {:?}", redact_url(url), e.kind()))?;
        Ok(Self {
            client,
            location: redact_url(url),
        })
    }

    fn fail(&self, e: &redis::RedisError) -> String {
        format!("redis {}: {e}", self.location)
    }

    fn conn(&self) -> Result<redis::Connection, String> {
        let conn = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .map_err(|e| self.fail(&e))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| self.fail(&e))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| self.fail(&e))?;
        Ok(conn)
    }

    /// Adds the deltas; an entry Redis does not hold yet is added only while
    /// fewer than `max_entries` are there (several replicas adding at once
    /// can pass it by one write each). Returns, per delta, whether it was
    /// written (`false`: dropped at the cap).
    pub fn write(
        &self,
        deltas: &[Delta<'_>],
        max_entries: usize,
        now: u64,
    ) -> Result<Vec<bool>, String> {
        let mut conn = self.conn()?;
        let fields: Vec<String> = deltas.iter().map(field).collect();
        let unknown: Vec<&String> = deltas
            .iter()
            .zip(&fields)
            .filter(|(d, _)| !d.known)
            .map(|(_, f)| f)
            .collect();
        let (len, present): (usize, Vec<bool>) = if unknown.is_empty() {
            (0, Vec::new())
        } else {
            let mut pipe = redis::pipe();
            pipe.hlen(META);
            for f in &unknown {
                pipe.hexists(META, *f);
            }
            let mut out: Vec<redis::Value> = pipe.query(&mut conn).map_err(|e| self.fail(&e))?;
            let len = redis::from_redis_value::<usize>(out.remove(0))
                .map_err(|e| format!("redis {}: HLEN {META}: {e}", self.location))?;
            let present = out
                .into_iter()
                .map(|v| redis::from_redis_value::<bool>(v).unwrap_or(false))
                .collect();
            (len, present)
        };
        let mut room = max_entries.saturating_sub(len);
        let mut present = present.into_iter();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut written = Vec::with_capacity(deltas.len());
        for (d, f) in deltas.iter().zip(&fields) {
            let ok = d.known
                || present.next().unwrap_or(false)
                || match room.checked_sub(1) {
                    Some(r) => {
                        room = r;
                        true
                    }
                    None => false,
                };
            written.push(ok);
            if !ok {
                continue;
            }
            let meta = serde_json::to_string(&Meta {
                needs: d.needs.to_vec(),
                first_seen: d.first_seen,
            })
            .map_err(|e| e.to_string())?;
            pipe.hset_nx(META, f, meta).ignore();
            pipe.hincr(COUNT, f, d.count).ignore();
            pipe.hincr(WOULD_DENY, f, d.would_deny).ignore();
            pipe.hset(LAST_SEEN, f, now).ignore();
        }
        pipe.query::<()>(&mut conn).map_err(|e| self.fail(&e))?;
        Ok(written)
    }

    /// Every entry every replica wrote.
    pub fn load(&self) -> Result<Vec<Observation>, String> {
        let mut conn = self.conn()?;
        let meta: std::collections::HashMap<String, String> =
            conn.hgetall(META).map_err(|e| self.fail(&e))?;
        let mut number = |key: &str| -> Result<std::collections::HashMap<String, u64>, String> {
            conn.hgetall(key).map_err(|e| self.fail(&e))
        };
        let (count, deny, last) = (number(COUNT)?, number(WOULD_DENY)?, number(LAST_SEEN)?);
        let mut out = Vec::new();
        for (f, m) in &meta {
            let bad = || {
                format!(
                    "redis {}: {META} holds an entry bcgate cannot read",
                    self.location
                )
            };
            let (client, method, route, write, checkout_content, family) =
                match serde_json::from_str::<FamilyField>(f) {
                    Ok((c, m, r, w, k, family, _)) => (c, m, r, w, k, family),
                    Err(_) => {
                        let (c, m, r, w, k): Field = serde_json::from_str(f).map_err(|_| bad())?;
                        (c, m, r, w, k, Family::Api.as_str().to_owned())
                    }
                };
            let m: Meta = serde_json::from_str(m).map_err(|_| bad())?;
            out.push(Observation {
                client,
                family,
                method,
                route,
                write,
                checkout_content,
                needs: m.needs,
                count: count.get(f).copied().unwrap_or(0),
                would_deny: deny.get(f).copied().unwrap_or(0),
                first_seen: m.first_seen,
                last_seen: last.get(f).copied().unwrap_or(m.first_seen),
            });
        }
        Ok(out)
    }
}

/// The api family's fields keep the shape they had before bcgate served
/// other families, so what a replica counted then still adds up.
fn field(d: &Delta<'_>) -> String {
    match d.family {
        Family::Api => {
            serde_json::json!([d.client, d.method, d.route, d.write, d.checkout_content])
        }
        family => serde_json::json!([
            d.client,
            d.method,
            d.route,
            d.write,
            d.checkout_content,
            family.as_str(),
            d.storefront
        ]),
    }
    .to_string()
}
