//! The table of every validation error: `(config text, key, message
//! fragment)`.

use super::UNSET;

pub(super) const STORE: &str = "[[stores]]\nhash = \"abc123\"\ntoken_file = \"t\"\n";
pub(super) const CLIENT: &str =
    "[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"abc123\"]\n";
/// An account uuid, in the lowercase form `[[accounts]]` takes.
pub(super) const ACCOUNT: &str = "0f0e0d0c-0b0a-0908-0706-05040302010f";
pub(super) const TOKEN_STORE: &str =
    "[token_store]\nkind = \"file\"\npath = \"tokens\"\nkey_file = \"key\"\n";
pub(super) const APP: &str = "[app]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://gate.example.com\"\n\
                   client_id = \"id\"\nclient_secret_file = \"secret\"\nscopes = [\"store_v2_products\"]\n";

/// `(config text, key, message fragment)` for every error the validation
/// gives. Texts that need a store, client, token store or app start from
/// the constants above.
pub(super) fn cases() -> Vec<(String, &'static str, &'static str)> {
    let s = |t: &str| t.to_owned();
    let with = |parts: &[&str]| parts.join("\n");
    let server = |line: &str| format!("[server]\n{line}\n");
    let upstream = |line: &str| format!("[upstream]\n{line}\n");
    let client = |lines: &str| {
        format!(
            "{STORE}\n[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"abc123\"]\n{lines}\n"
        )
    };
    let app = |replace: &str, by: &str| format!("{TOKEN_STORE}\n{}", APP.replace(replace, by));
    let token_store = |body: &str| format!("[token_store]\n{body}\n");
    let store = |body: &str| format!("[[stores]]\n{body}\n");
    let quota = |line: &str| format!("[quota]\n{line}\n");
    let learn = |body: &str| format!("{STORE}\n{CLIENT}mode = \"learn\"\n[learn]\n{body}\n");
    let account = |body: &str| format!("[[accounts]]\n{body}\n");
    vec![
        // The file form: serde names the key.
        (
            server("bogus_option = 1"),
            "server",
            "unknown field `bogus_option`",
        ),
        (
            s("[servr]\nlisten = \"127.0.0.1:0\"\n"),
            "",
            "unknown field `servr`",
        ),
        (
            server("max_body_bytes = \"lots\""),
            "server.max_body_bytes",
            "expected an integer",
        ),
        (
            format!("{STORE}\n[[clients]]\nname = [1]\nkey_sha256 = \"KEY\"\n"),
            "clients[0].name",
            "invalid type: sequence, expected a string",
        ),
        (
            s("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\n"),
            "routes[0]",
            "missing field `scope`",
        ),
        (s("[admin]\n"), "admin", "missing field `listen`"),
        // [server] and [admin]
        (
            server("listen = \"nowhere\""),
            "server.listen",
            "\"nowhere\" is not ip:port or unix:/path",
        ),
        (
            server("listen = \"unix:\""),
            "server.listen",
            "unix: needs a socket path",
        ),
        (
            server("tls = { cert = \"missing\", key = \"cert\" }"),
            "server.tls.cert",
            "missing does not exist",
        ),
        (
            server("tls = { cert = \"cert\", key = \"missing\" }"),
            "server.tls.key",
            "does not exist",
        ),
        (
            server("tls = { cert = \"cert\", key = \"cert\", client_ca = \"missing\" }"),
            "server.tls.client_ca",
            "does not exist",
        ),
        (
            server("max_body_bytes = 0"),
            "server.max_body_bytes",
            "must be greater than 0",
        ),
        (
            server("header_read_timeout_ms = 0"),
            "server.header_read_timeout_ms",
            "must be greater than 0",
        ),
        (
            server("body_read_timeout_ms = 0"),
            "server.body_read_timeout_ms",
            "must be greater than 0",
        ),
        (
            server("drain_timeout_ms = 0"),
            "server.drain_timeout_ms",
            "must be greater than 0",
        ),
        (
            server("body_total_timeout_ms = 0"),
            "server.body_total_timeout_ms",
            "must be greater than 0",
        ),
        (
            server("max_connections = 0"),
            "server.max_connections",
            "must be greater than 0",
        ),
        (
            server("listen_backlog = 0"),
            "server.listen_backlog",
            "must be greater than 0",
        ),
        (
            server("max_in_flight = 0"),
            "server.max_in_flight",
            "must be greater than 0",
        ),
        (
            server("body_total_timeout_ms = 10\nbody_read_timeout_ms = 20"),
            "server.body_total_timeout_ms",
            "must be at least server.body_read_timeout_ms",
        ),
        (
            server("error_docs_url = \"errors.html\""),
            "server.error_docs_url",
            "must be an absolute URI",
        ),
        (
            server("error_docs_url = \"1x:y\""),
            "server.error_docs_url",
            "must be an absolute URI",
        ),
        (
            server("error_docs_url = \"https://d.example/e#x\""),
            "server.error_docs_url",
            "must not have a fragment",
        ),
        (
            server("error_docs_url = \"https://d.example/é\""),
            "server.error_docs_url",
            "must be at most 2048 URI characters",
        ),
        (
            s("[admin]\nlisten = \"nowhere\"\n"),
            "admin.listen",
            "is not ip:port or unix:/path",
        ),
        // [upstream]
        (
            upstream("base_url = \"not a url\""),
            "upstream.base_url",
            "\"not a url\" is not a URL",
        ),
        (
            upstream("base_url = \"http://api.example\""),
            "upstream.base_url",
            "must be an https:// URL",
        ),
        (
            upstream("base_url = \"https://api.example/?q=1\""),
            "upstream.base_url",
            "must not have a query",
        ),
        (
            upstream("base_url = \"https://u:p@api.example\""),
            "upstream.base_url",
            "must not carry user info",
        ),
        (
            upstream("base_url = \"https://:443/\""),
            "upstream.base_url",
            "must name a host",
        ),
        (
            upstream("base_url = \"https://api.example/#x\""),
            "upstream.base_url",
            "must not have a fragment",
        ),
        (
            upstream("payments_url = \"not a url\""),
            "upstream.payments_url",
            "\"not a url\" is not a URL",
        ),
        (
            upstream("payments_url = \"http://payments.example\""),
            "upstream.payments_url",
            "must be an https:// URL: payment tokens never travel in clear",
        ),
        (
            upstream("payments_url = \"https://payments.example/?x=1\""),
            "upstream.payments_url",
            "must not have a query",
        ),
        (
            upstream("payments_url = 1"),
            "upstream.payments_url",
            "must be an https:// URL",
        ),
        (
            upstream("b2b_url = \"http://127.0.0.1:9000\""),
            "upstream.b2b_url",
            "must be an https:// URL: store tokens never travel in clear",
        ),
        (
            upstream("b2b_url = \"https://u:p@b2b.example\""),
            "upstream.b2b_url",
            "must not carry user info",
        ),
        (
            upstream("b2b_url = \"https://:443/\""),
            "upstream.b2b_url",
            "must name a host",
        ),
        (
            upstream("b2b_url = \"https://b2b.example/#top\""),
            "upstream.b2b_url",
            "must not have a fragment",
        ),
        (
            format!(
                "{STORE}\n[[stores]]\nhash = \"def\"\ntoken_file = \"t\"\nscopes = [\"store_v2_products\", [1]]\n"
            ),
            "stores[1].scopes[1]",
            "invalid type: sequence, expected a string",
        ),
        (
            upstream("connect_timeout_ms = 0"),
            "upstream.connect_timeout_ms",
            "must be greater than 0",
        ),
        (
            upstream("request_timeout_ms = 0"),
            "upstream.request_timeout_ms",
            "must be greater than 0",
        ),
        (
            upstream("ca_file = \"missing\""),
            "upstream.ca_file",
            "does not exist",
        ),
        // [[routes]]
        (
            s("[[routes]]\nmethod = \"HEAD\"\npath = \"/x\"\nscope = \"store_v2_products\"\n"),
            "routes[0].method",
            "must be GET, POST, PUT, PATCH or DELETE",
        ),
        (
            s("[[routes]]\nmethod = \"GET\"\npath = \"x\"\nscope = \"store_v2_products\"\n"),
            "routes[0].path",
            "must start with '/'",
        ),
        (
            s("[[routes]]\nmethod = \"GET\"\npath = \"/a/{b\"\nscope = \"store_v2_products\"\n"),
            "routes[0].path",
            "must be a literal or a whole {parameter}",
        ),
        (
            s("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\nscope = \"store_v2_prodcts\"\n"),
            "routes[0].scope",
            "unknown scope \"store_v2_prodcts\" (did you mean \"store_v2_products\"?",
        ),
        (
            s("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\nscope = \"zzzzzzzzzzzzzzzzzzzz\"\n"),
            "routes[0].scope",
            "(`bcgate routes` lists the known scopes)",
        ),
        // [[stores]]
        (
            store("hash = \"ABC\"\ntoken_file = \"t\""),
            "stores[0].hash",
            "a store hash is lowercase letters and digits",
        ),
        (
            store("hash = \"abc\"\nalias = \"E U\"\ntoken_file = \"t\""),
            "stores[0].alias",
            "an alias is lowercase letters, digits, '-' and '_'",
        ),
        (
            store(&format!("hash = \"abc\"\ntoken_env = \"{UNSET}\"")),
            "stores[0].token_env",
            "is not set",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"missing\""),
            "stores[0].token_file",
            "does not exist",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"empty\""),
            "stores[0].token_file",
            "the token is empty",
        ),
        (
            store("hash = \"abc\""),
            "stores[0].token_env",
            "set exactly one of token_env and token_file",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"t\"\ntoken_env = \"X\""),
            "stores[0].token_env",
            "set exactly one of token_env and token_file",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"t\"\nscopes = [\"store_v2_products\", \"nope\"]"),
            "stores[0].scopes[1]",
            "unknown scope \"nope\"",
        ),
        (
            with(&[STORE, &store("hash = \"abc123\"\ntoken_file = \"t\"")]),
            "stores[1].hash",
            "\"abc123\" names another store already",
        ),
        (
            with(&[
                STORE,
                &store("hash = \"def\"\nalias = \"abc123\"\ntoken_file = \"t\""),
            ]),
            "stores[1].alias",
            "\"abc123\" names another store already",
        ),
        // [[stores]]: client id and secret
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"\"\nclient_secret_file = \"secret\"",
            ),
            "stores[0].client_id",
            "must be non-empty text",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\""),
            "stores[0].client_secret_env",
            "client_id needs its client secret: set client_secret_env or client_secret_file",
        ),
        (
            store("hash = \"abc\"\ntoken_file = \"t\"\nclient_secret_file = \"secret\""),
            "stores[0].client_id",
            "client_secret_file needs the client_id the secret belongs to",
        ),
        (
            store(&format!(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_secret_env = \"{UNSET}\""
            )),
            "stores[0].client_id",
            "client_secret_env needs the client_id the secret belongs to",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_file = \"secret\"\nclient_secret_env = \"X\"",
            ),
            "stores[0].client_secret_env",
            "set at most one of client_secret_env and client_secret_file",
        ),
        (
            store(&format!(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_env = \"{UNSET}\""
            )),
            "stores[0].client_secret_env",
            "is not set",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_file = \"missing\"",
            ),
            "stores[0].client_secret_file",
            "does not exist",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_file = \"empty\"",
            ),
            "stores[0].client_secret_file",
            "the client secret is empty",
        ),
        // [[stores]]: channels
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 0, origin = \"https://shop.example\" }]",
            ),
            "stores[0].channels[0].id",
            "a channel id is 1 or more",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = -1, origin = \"https://shop.example\" }]",
            ),
            "stores[0].channels[0].id",
            "invalid type: 64-bit integer `-1`",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://a.example\" }, { id = 1, origin = \"https://b.example\" }]",
            ),
            "stores[0].channels[1].id",
            "channel 1 is listed twice",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ origin = \"https://shop.example\" }]",
            ),
            "stores[0].channels[0]",
            "missing field `id`",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://shop.example\", name = \"x\" }]",
            ),
            "stores[0].channels[0]",
            "unknown field `name`",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"shop.example\" }]",
            ),
            "stores[0].channels[0].origin",
            "must be an https:// URL: storefront tokens never travel in clear",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"http://shop.example\" }]",
            ),
            "stores[0].channels[0].origin",
            "must be an https:// URL: storefront tokens never travel in clear",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 2, origin = \"https://shop.example\" }, { id = 3, origin = \"https://shop.example/?c=3\" }]",
            ),
            "stores[0].channels[1].origin",
            "must not have a query",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://shop.example/#x\" }]",
            ),
            "stores[0].channels[0].origin",
            "must not have a fragment",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://u:p@shop.example\" }]",
            ),
            "stores[0].channels[0].origin",
            "must not carry user info",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://:443\" }]",
            ),
            "stores[0].channels[0].origin",
            "must name a host",
        ),
        (
            store(
                "hash = \"abc\"\ntoken_file = \"t\"\nchannels = [{ id = 1, origin = \"https://shop example\" }]",
            ),
            "stores[0].channels[0].origin",
            "is not a URL",
        ),
        // [[accounts]]
        (
            account(&format!(
                "uuid = \"{}\"\ntoken_file = \"t\"",
                ACCOUNT.to_uppercase()
            )),
            "accounts[0].uuid",
            "is not a uuid in lowercase (8-4-4-4-12 hex digits",
        ),
        (
            account("uuid = \"0f0e0d0c-0b0a-0908-0706-05040302010\"\ntoken_file = \"t\""),
            "accounts[0].uuid",
            "is not a uuid in lowercase",
        ),
        (
            account("uuid = \"0f0e0d0c0b0a0908070605040302010f\"\ntoken_file = \"t\""),
            "accounts[0].uuid",
            "is not a uuid in lowercase",
        ),
        (
            account("uuid = \"0f0e0d0c-0b0a-0908-0706-05040302010g\"\ntoken_file = \"t\""),
            "accounts[0].uuid",
            "is not a uuid in lowercase",
        ),
        (
            account(&format!("uuid = \"{ACCOUNT}\"")),
            "accounts[0].token_env",
            "set exactly one of token_env and token_file",
        ),
        (
            account(&format!(
                "uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"\ntoken_env = \"X\""
            )),
            "accounts[0].token_env",
            "set exactly one of token_env and token_file",
        ),
        (
            account(&format!("uuid = \"{ACCOUNT}\"\ntoken_env = \"{UNSET}\"")),
            "accounts[0].token_env",
            "is not set",
        ),
        (
            account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"missing\"")),
            "accounts[0].token_file",
            "does not exist",
        ),
        (
            account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"empty\"")),
            "accounts[0].token_file",
            "the token is empty",
        ),
        (
            format!(
                "{}{}",
                account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"")),
                account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"t\""))
            ),
            "accounts[1].uuid",
            "is configured twice",
        ),
        (
            account(&format!(
                "uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"\nscopes = []"
            )),
            "accounts[0]",
            "unknown field `scopes`",
        ),
        (
            s("[[accounts]]\ntoken_file = \"t\"\n"),
            "accounts[0]",
            "missing field `uuid`",
        ),
        // [token_store]
        (
            token_store(
                "kind = \"file\"\npath = \"tokens\"\nurl = \"redis://h/0\"\nkey_file = \"key\"",
            ),
            "token_store.url",
            "only for kind = \"redis\"",
        ),
        (
            token_store("kind = \"file\"\nkey_file = \"key\""),
            "token_store.path",
            "kind = \"file\" needs a path",
        ),
        (
            token_store("kind = \"redis\"\npath = \"tokens\"\nkey_file = \"key\""),
            "token_store.path",
            "only for kind = \"file\"",
        ),
        (
            token_store("kind = \"redis\"\nkey_file = \"key\""),
            "token_store.url",
            "kind = \"redis\" needs a url",
        ),
        (
            token_store("kind = \"redis\"\nurl = \"rediss://h/0\"\nkey_file = \"key\""),
            "token_store.url",
            "TLS to Redis (rediss://) is not supported",
        ),
        (
            token_store("kind = \"redis\"\nurl = \"http://h/0\"\nkey_file = \"key\""),
            "token_store.url",
            "not a Redis URL",
        ),
        (
            token_store("kind = \"disk\"\npath = \"tokens\"\nkey_file = \"key\""),
            "token_store.kind",
            "\"disk\" is not a token store kind (\"file\" or \"redis\")",
        ),
        (
            token_store("kind = \"file\"\npath = \"tokens\""),
            "token_store.key_env",
            "set exactly one of key_env and key_file",
        ),
        (
            token_store("kind = \"file\"\npath = \"tokens\"\nkey_file = \"missing\""),
            "token_store.key_file",
            "does not exist",
        ),
        (
            token_store(&format!(
                "kind = \"file\"\npath = \"tokens\"\nkey_env = \"{UNSET}\""
            )),
            "token_store.key_env",
            "is not set",
        ),
        (
            token_store("kind = \"file\"\npath = \"tokens\"\nkey_file = \"badkey\""),
            "token_store.key_file",
            "the store key is not valid base64",
        ),
        (
            token_store("kind = \"file\"\npath = \"tokens\"\nkey_file = \"shortkey\""),
            "token_store.key_file",
            "the store key decodes to 4 bytes; it must be exactly 32",
        ),
        // [[clients]]
        (
            s("[[clients]]\nname = \"\"\nkey_sha256 = \"KEY\"\n"),
            "clients[0].name",
            "a client name is non-empty text without quotes",
        ),
        (
            s("[[clients]]\nname = \"o'brien\"\nkey_sha256 = \"KEY\"\n"),
            "clients[0].name",
            "without quotes",
        ),
        (
            s(
                "[[clients]]\nname = \"c\"\nunix_uid = 1\n[[clients]]\nname = \"c\"\nunix_uid = 2\n[server]\nlisten = \"unix:/tmp/s\"\n",
            ),
            "clients[1].name",
            "client \"c\" is defined twice",
        ),
        (
            s("[[clients]]\nname = \"c\"\nkey_sha256 = \"xyz\"\n"),
            "clients[0].key_sha256",
            "must be 64 hex digits",
        ),
        (
            s("[[clients]]\nname = \"c\"\ntls_subject = \"CN\"\n"),
            "clients[0].tls_subject",
            "\"CN\" is not TYPE=value",
        ),
        (
            s("[[clients]]\nname = \"c\"\n"),
            "clients[0].key_sha256",
            "a client needs key_sha256, unix_uid or tls_subject to be identified by",
        ),
        (
            format!(
                "{STORE}\n[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"*\", \"abc123\"]\n"
            ),
            "clients[0].stores",
            "\"*\" must stand alone",
        ),
        (
            format!(
                "{STORE}\n[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"abc124\"]\n"
            ),
            "clients[0].stores[0]",
            "client \"c\": no store \"abc124\" is configured (did you mean \"abc123\"?)",
        ),
        (
            format!(
                "{STORE}\n[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"zzzzzzzzzz\"]\n"
            ),
            "clients[0].stores[0]",
            "(configured: \"abc123\")",
        ),
        (
            s("[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"abc\"]\n"),
            "clients[0].stores[0]",
            "(there are no [[stores]])",
        ),
        (
            format!(
                "{TOKEN_STORE}\n[[clients]]\nname = \"c\"\nkey_sha256 = \"KEY\"\nstores = [\"Not-A-Hash\"]\n"
            ),
            "clients[0].stores[0]",
            "it is not a store hash (lowercase letters and digits) an installed store could have",
        ),
        (
            client("default_store = \"nope\""),
            "clients[0].default_store",
            "no store \"nope\" is configured",
        ),
        (
            with(&[
                STORE,
                &store("hash = \"def\"\ntoken_file = \"t\""),
                CLIENT,
                "default_store = \"def\"",
            ]),
            "clients[0].default_store",
            "\"def\" is not in this client's stores",
        ),
        (
            client("scopes = [\"nope\"]"),
            "clients[0].scopes[0]",
            "unknown scope \"nope\"",
        ),
        (
            client("quota_weight = 0"),
            "clients[0].quota_weight",
            "must be from 1 to 1000",
        ),
        (
            client("quota_weight = 1001"),
            "clients[0].quota_weight",
            "must be from 1 to 1000",
        ),
        (
            client("quota_max_share = 1.5"),
            "clients[0].quota_max_share",
            "must be a fraction greater than 0 and at most 1",
        ),
        (
            client("mode = \"audit\""),
            "clients[0].mode",
            "\"audit\" is not a mode (\"enforce\" or \"learn\")",
        ),
        (
            with(&[
                STORE,
                CLIENT,
                "[[clients]]\nname = \"d\"\nkey_sha256 = \"KEY\"\n",
            ]),
            "clients[1].key_sha256",
            "another client has the same key",
        ),
        (
            s(
                "[server]\nlisten = \"unix:/tmp/s\"\n[[clients]]\nname = \"c\"\nunix_uid = 1\n[[clients]]\nname = \"d\"\nunix_uid = 1\n",
            ),
            "clients[1].unix_uid",
            "another client has the same unix_uid",
        ),
        (
            s(
                "[server]\ntls = { cert = \"cert\", key = \"cert\", client_ca = \"cert\" }\n\
               [[clients]]\nname = \"c\"\ntls_subject = \"CN=a, O=b\"\n\
               [[clients]]\nname = \"d\"\ntls_subject = \"o=b,cn=a\"\n",
            ),
            "clients[1].tls_subject",
            "another client has the same tls_subject",
        ),
        (
            s("[[clients]]\nname = \"c\"\nunix_uid = 1\n"),
            "clients[0].unix_uid",
            "needs server.listen = \"unix:/path\" (a TCP peer has no uid)",
        ),
        (
            s("[[clients]]\nname = \"c\"\ntls_subject = \"CN=a\"\n"),
            "clients[0].tls_subject",
            "needs server.tls.client_ca (only a verified certificate names a client)",
        ),
        (
            client(&format!("accounts = [\"{ACCOUNT}\"]")),
            "clients[0].accounts[0]",
            "client \"c\": no account \"0f0e0d0c-0b0a-0908-0706-05040302010f\" is configured (there are no [[accounts]])",
        ),
        (
            format!(
                "{}{}",
                account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"")),
                client("accounts = [\"0f0e0d0c-0b0a-0908-0706-050403020100\"]")
            ),
            "clients[0].accounts[0]",
            "(configured: \"0f0e0d0c-0b0a-0908-0706-05040302010f\")",
        ),
        (
            format!(
                "{}{}",
                account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"")),
                client(&format!("accounts = [\"{}\"]", ACCOUNT.to_uppercase()))
            ),
            "clients[0].accounts[0]",
            "no account \"0F0E0D0C-0B0A-0908-0706-05040302010F\" is configured",
        ),
        (
            format!(
                "{}{}",
                account(&format!("uuid = \"{ACCOUNT}\"\ntoken_file = \"t\"")),
                client(&format!("accounts = [\"{ACCOUNT}\", \"{ACCOUNT}\"]"))
            ),
            "clients[0].accounts[1]",
            "is listed twice",
        ),
        // [app]
        (
            s(APP),
            "app",
            "needs a [token_store] to keep the tokens of the stores that install the app",
        ),
        (
            format!(
                "[server]\nlisten = \"127.0.0.1:8443\"\n{}",
                app("127.0.0.1:0", "127.0.0.1:8443")
            ),
            "app.listen",
            "must differ from server.listen",
        ),
        (
            app("127.0.0.1:0", "unix:/tmp/app"),
            "app.listen",
            "must be ip:port (BigCommerce calls it over the network)",
        ),
        (
            app("127.0.0.1:0", "nowhere"),
            "app.listen",
            "is not ip:port or unix:/path",
        ),
        (
            format!(
                "{}tls = {{ cert = \"cert\", key = \"cert\", client_ca = \"cert\" }}\n",
                app("", "")
            ),
            "app.tls.client_ca",
            "BigCommerce presents no client certificate",
        ),
        (
            format!(
                "{}tls = {{ cert = \"missing\", key = \"cert\" }}\n",
                app("", "")
            ),
            "app.tls.cert",
            "does not exist",
        ),
        (
            format!(
                "{}tls = {{ cert = \"cert\", key = \"missing\" }}\n",
                app("", "")
            ),
            "app.tls.key",
            "does not exist",
        ),
        (
            app("https://gate.example.com", "not a url"),
            "app.public_url",
            "\"not a url\" is not a URL",
        ),
        (
            app("https://gate.example.com", "/relative"),
            "app.public_url",
            "must be an absolute URL without a query",
        ),
        (
            app("https://gate.example.com", "https://gate.example.com/?q=1"),
            "app.public_url",
            "must be an absolute URL without a query",
        ),
        (
            app("https://gate.example.com", "https://:8443"),
            "app.public_url",
            "must be an absolute URL without a query",
        ),
        (
            format!("{}login_url = \"https://:443\"\n", app("", "")),
            "app.login_url",
            "must be an https:// URL without a query",
        ),
        (
            app("client_id = \"id\"", "client_id = \"\""),
            "app.client_id",
            "must be non-empty text",
        ),
        (
            app(
                "client_secret_file = \"secret\"",
                &format!("client_secret_env = \"{UNSET}\""),
            ),
            "app.client_secret_env",
            "is not set",
        ),
        (
            app(
                "client_secret_file = \"secret\"",
                "client_secret_file = \"missing\"",
            ),
            "app.client_secret_file",
            "does not exist",
        ),
        (
            app(
                "client_secret_file = \"secret\"",
                "client_secret_file = \"empty\"",
            ),
            "app.client_secret_file",
            "the client secret is empty",
        ),
        (
            app("client_secret_file = \"secret\"", ""),
            "app.client_secret_env",
            "set exactly one of client_secret_env and client_secret_file",
        ),
        (
            app("[\"store_v2_products\"]", "[]"),
            "app.scopes",
            "list the scopes the app must be granted",
        ),
        (
            app("[\"store_v2_products\"]", "[\"nope\"]"),
            "app.scopes[0]",
            "unknown scope \"nope\"",
        ),
        (
            app(
                "[\"store_v2_products\"]",
                "[\"store_v2_products\", \"store_v2_products\"]",
            ),
            "app.scopes[1]",
            "\"store_v2_products\" is listed twice",
        ),
        (
            format!("{}login_url = \"not a url\"\n", app("", "")),
            "app.login_url",
            "\"not a url\" is not a URL",
        ),
        (
            format!("{}login_url = \"http://login.example\"\n", app("", "")),
            "app.login_url",
            "must be an https:// URL without a query: the client secret never travels in clear",
        ),
        // [quota]
        (
            quota("max_wait_ms = 600001"),
            "quota.max_wait_ms",
            "must be at most 600000 (10 minutes)",
        ),
        (
            quota("max_queue = 0"),
            "quota.max_queue",
            "must be greater than 0",
        ),
        (quota("retries = 11"), "quota.retries", "must be at most 10"),
        (
            quota("replicas = 0"),
            "quota.replicas",
            "must be greater than 0",
        ),
        (
            quota("redis_url = \"rediss://h/0\""),
            "quota.redis_url",
            "TLS to Redis (rediss://) is not supported",
        ),
        // [mint]
        (
            s("[mint]\ntoken_lifetime_s = 59\n"),
            "mint.token_lifetime_s",
            "must be from 60 to 31536000 (a year)",
        ),
        (
            s("[mint]\ntoken_lifetime_s = 31536001\n"),
            "mint.token_lifetime_s",
            "must be from 60 to 31536000",
        ),
        (
            s("[mint]\nrenew_before_s = 86400\n"),
            "mint.renew_before_s",
            "must be less than mint.token_lifetime_s",
        ),
        (
            s("[mint]\ntoken_lifetime_s = 600\nrenew_before_s = 601\n"),
            "mint.renew_before_s",
            "must be less than mint.token_lifetime_s",
        ),
        (
            s("[mint]\nrenew_before_s = -1\n"),
            "mint.renew_before_s",
            "invalid type: 64-bit integer `-1`",
        ),
        // [learn]
        (
            format!("{STORE}\n{CLIENT}mode = \"learn\"\n"),
            "clients[0].mode",
            "learn mode needs a [learn] section (where the observations are kept)",
        ),
        (learn("path = \"/\""), "learn.path", "must name a file"),
        (
            learn(""),
            "learn.path",
            "needed, unless [token_store] kind = \"redis\" keeps the observations",
        ),
        (
            learn("path = \"obs\"\nmax_entries = 0"),
            "learn.max_entries",
            "must be greater than 0",
        ),
        (
            learn("path = \"obs\"\nflush_interval_ms = 0"),
            "learn.flush_interval_ms",
            "must be greater than 0",
        ),
    ]
}
