//! Body types shared by the request path: one boxed streaming body for every
//! response, and the bounded read used when policy must look inside a body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited, combinators::UnsyncBoxBody};

use crate::error::ProxyError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: upstream bodies streamed through, or bcgate's own JSON.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Set when a streamed request body went over the limit. The upstream client
/// may report that only as a generic stream error (HTTP/2 resets), so the
/// forward stage asks this flag rather than the error chain.
#[derive(Debug, Clone, Default)]
pub struct OverLimit(Arc<AtomicBool>);

impl OverLimit {
    pub fn tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Streams a request body through, failing it once it passes `limit` bytes.
pub fn limited<B>(body: B, limit: u64) -> (ProxyBody, OverLimit)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let flag = OverLimit::default();
    let seen = flag.clone();
    let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .map_err(move |e| {
            if is_length_limit(e.as_ref()) {
                seen.0.store(true, Ordering::Relaxed);
            }
            e
        })
        .boxed_unsync();
    (body, flag)
}

/// Reads a whole body of at most `limit` bytes (scripts rule, GraphQL).
pub async fn read_bounded<B>(body: B, limit: u64) -> Result<Bytes, ProxyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if is_length_limit(e.as_ref()) => Err(ProxyError::BodyTooLarge { limit }),
        Err(_) => Err(ProxyError::BadRequest(
            "the request body could not be read".into(),
        )),
    }
}

/// True when `err`, or anything in its source chain, is a body over the limit.
pub fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}
