//! The tokens bcgate mints with a store's API token for the hosts that do
//! not take it: payment access tokens (per order, never kept), storefront
//! private and customer impersonation tokens (cached per store and channel,
//! renewed before they expire), and the verification of the current-customer
//! JWT that says which customer a storefront request may act as.
//!
//! The requests and answers are pure ([`requests`]); the cache talks to
//! BigCommerce through a [`Transport`], which the upstream client is.

mod cache;
mod customer;
pub mod requests;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use zeroize::Zeroizing;

use crate::body::{BodyWatch, millis};
use crate::error::ProxyError;
use crate::forward::UpstreamClient;
use crate::secret::Secret;

pub use cache::{MAX_CACHED, Mint, TokenKey};
pub use customer::{
    Customer, LEEWAY_SECS, verify_current_customer, verify_current_customer_for_store,
};
pub use requests::{MintKind, StorefrontScopes};

/// The largest answer to a mint bcgate reads (a token answer is well under 4 KiB).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The answer of a transport: BigCommerce's status and whole body.
pub type Answer = Result<(StatusCode, Bytes), ProxyError>;

/// Sends a mint request to the api origin. The request's URI is the path
/// below `/stores/{store_hash}`; the transport adds origin and store.
pub trait Transport: Send + Sync {
    fn send(
        &self,
        store_hash: &str,
        req: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>>;
}

impl Transport for UpstreamClient {
    fn send(
        &self,
        store_hash: &str,
        req: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        let (mut parts, body) = req.into_parts();
        let uri = self.uri(store_hash, parts.uri.path(), parts.uri.query());
        Box::pin(async move {
            parts.uri = uri?;
            parts.headers.insert(header::HOST, self.host().clone());
            let req = Request::from_parts(parts, crate::body::full(body));
            let timeout = self.request_timeout();
            let exchange = async {
                let resp =
                    UpstreamClient::send(self, req, u64::MAX, timeout, &BodyWatch::default())
                        .await?;
                let status = resp.status();
                let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                    .collect()
                    .await
                    .map_err(|e| {
                        ProxyError::UpstreamUnavailable(if crate::body::is_length_limit(&*e) {
                            format!("its answer was larger than {MAX_ANSWER_BYTES} bytes")
                        } else {
                            "its answer was cut short".into()
                        })
                    })?
                    .to_bytes();
                Ok((status, body))
            };
            // The head is awaited within the timeout already; this bounds the body too.
            tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(
                ProxyError::UpstreamTimeout {
                    after_ms: millis(timeout),
                },
            ))
        })
    }
}

/// `Authorization: Bearer <token>` for a storefront request, marked sensitive.
pub fn bearer(token: &Secret) -> HeaderValue {
    authorization("Bearer ", token)
}

/// `Authorization: PAT <token>` for a payments request, marked sensitive.
pub fn pat_authorization(token: &Secret) -> HeaderValue {
    authorization("PAT ", token)
}

fn authorization(scheme: &str, token: &Secret) -> HeaderValue {
    let mut value = Zeroizing::new(Vec::with_capacity(
        scheme.len() + token.expose_bytes().len(),
    ));
    value.extend_from_slice(scheme.as_bytes());
    value.extend_from_slice(token.expose_bytes());
    // A minted token was checked to be a header value when it was read,
    // so the fallback (which no host accepts) is never sent.
    let mut v = HeaderValue::from_bytes(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}
