//! Credential stage: the headers that carry a decision's credential upstream
//! ([`crate::decide::Credential`]): a store's or an account's token as configured,
//! or a token bcgate mints for the request ([`crate::mint`]). Whatever it
//! is, the caller never sees it: the response is scrubbed of it too.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::config::{Config, MintConfig, Store};
use crate::decide::Credential;
use crate::error::ProxyError;
use crate::family::Family;
use crate::forward::UpstreamClient;
use crate::headers::{
    PAYMENTS_ACCEPT, X_AUTH_TOKEN, X_BC_CUSTOMER_ID, X_BCGATE_CUSTOMER_TOKEN, X_STORE_HASH,
};
use crate::mint::{Mint, StorefrontScopes, TokenKey};
use crate::secret::Secret;

/// The headers bcgate adds upstream, and what to scrub from the answer.
#[derive(Debug)]
pub struct Injected {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The credential's value, never to appear in the caller's response.
    pub secret: HeaderValue,
    /// A cached storefront token: if the storefront refuses it, [`renew`]
    /// drops it and gives the headers of a fresh one.
    pub cached: Option<Cached>,
}

/// A cached storefront token a request was sent with.
#[derive(Debug)]
pub struct Cached {
    key: TokenKey,
    token: Arc<Secret>,
    customer: Option<u64>,
}

/// What resolving a credential needs of the config generation.
#[derive(Debug, Clone, Copy)]
pub struct Minting<'a> {
    pub mint: &'a Mint,
    /// The api origin, where tokens are minted.
    pub api: &'a UpstreamClient,
    pub settings: &'a MintConfig,
}

/// The headers for `credential`, minting (or taking from the cache) what it
/// needs. `headers` are the caller's (for `X-Bcgate-Customer-Token`);
/// `config` gives the client id and secret that signed the store's
/// current-customer tokens ([`Config::store_client`]), looked up only for
/// a request that sends one.
pub async fn resolve(
    m: Minting<'_>,
    family: Family,
    credential: &Credential,
    store: Option<&Store>,
    config: &Config,
    headers: &HeaderMap,
) -> Result<Injected, ProxyError> {
    match credential {
        Credential::StoreToken => {
            let store = store_of(store)?;
            let token = store.token.header_value();
            let mut headers = vec![(X_AUTH_TOKEN, token.clone())];
            if family == Family::B2b {
                headers.push((X_STORE_HASH, value(&store.hash)?));
            }
            Ok(Injected {
                headers,
                secret: token,
                cached: None,
            })
        }
        Credential::Account(account) => {
            let token = account.token.header_value();
            Ok(Injected {
                headers: vec![(X_AUTH_TOKEN, token.clone())],
                secret: token,
                cached: None,
            })
        }
        Credential::PaymentToken { order } => {
            let store = store_of(store)?;
            let pat = m.mint.pat(m.api, &store.hash, &store.token, *order).await?;
            Ok(Injected {
                headers: vec![
                    (header::AUTHORIZATION, crate::mint::pat_authorization(&pat)),
                    (header::ACCEPT, HeaderValue::from_static(PAYMENTS_ACCEPT)),
                ],
                secret: sensitive(pat.expose())?,
                cached: None,
            })
        }
        Credential::Private { channel, scopes } => {
            let key = TokenKey::Private {
                channel: *channel,
                scopes: StorefrontScopes::new(scopes & 1 != 0, scopes & 2 != 0, scopes & 4 != 0),
            };
            storefront(m, store_of(store)?, key, None).await
        }
        Credential::Impersonation { channel, customer } => {
            let key = TokenKey::Impersonation { channel: *channel };
            storefront(m, store_of(store)?, key, Some(*customer)).await
        }
        // Answered by bcgate before any credential is needed.
        Credential::Answer(_) => Err(ProxyError::BadRequest(
            "bcgate answers this endpoint itself".into(),
        )),
        Credential::ProvenCustomer { channel } => {
            let store = store_of(store)?;
            let jwt = headers
                .get(X_BCGATE_CUSTOMER_TOKEN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Some((client_id, secret)) = config.store_client(store) else {
                return Err(ProxyError::InvalidCustomerToken(format!(
                    "store '{}' has no client_id and client secret configured to verify it",
                    store.hash
                )));
            };
            let customer = crate::mint::verify_current_customer_for_store(
                jwt,
                &store.hash,
                client_id,
                secret,
            )?;
            let key = TokenKey::Impersonation { channel: *channel };
            storefront(m, store, key, Some(customer.id)).await
        }
    }
}

/// A storefront token from the cache (minted when it has none fresh enough).
async fn storefront(
    m: Minting<'_>,
    store: &Store,
    key: TokenKey,
    customer: Option<u64>,
) -> Result<Injected, ProxyError> {
    let token = m
        .mint
        .storefront(
            m.api,
            &store.hash,
            &store.token,
            key,
            m.settings.token_lifetime,
            m.settings.renew_before,
        )
        .await?;
    let mut headers = vec![(header::AUTHORIZATION, crate::mint::bearer(&token))];
    if let Some(id) = customer {
        headers.push((X_BC_CUSTOMER_ID, HeaderValue::from(id)));
    }
    Ok(Injected {
        headers,
        secret: sensitive(token.expose())?,
        cached: Some(Cached {
            key,
            token,
            customer,
        }),
    })
}

/// The storefront refused `refused`'s cached token (401): forget it, and
/// mint the headers of a fresh one. `None` when nothing was cached.
pub async fn renew(
    m: Minting<'_>,
    store: &Store,
    refused: &Injected,
) -> Result<Option<Injected>, ProxyError> {
    let Some(c) = &refused.cached else {
        return Ok(None);
    };
    m.mint.refused(&store.hash, c.key, &c.token);
    storefront(m, store, c.key, c.customer).await.map(Some)
}

fn store_of(store: Option<&Store>) -> Result<&Store, ProxyError> {
    store.ok_or_else(|| ProxyError::BadRequest("the request names no store".into()))
}

fn value(s: &str) -> Result<HeaderValue, ProxyError> {
    HeaderValue::from_str(s)
        .map_err(|_| ProxyError::BadRequest("a value cannot be sent as a header".into()))
}

/// A header value holding a secret: marked sensitive (HPACK never indexes it).
fn sensitive(s: &str) -> Result<HeaderValue, ProxyError> {
    let mut v = HeaderValue::from_str(s)
        .map_err(|_| ProxyError::MintFailed("a token that is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}
