//! The one callback subscription of the app: where events go, which tags it wants, and the
//! keys that protect them; and the validation of its inputs, shared by `/call_back/...` and
//! `/_sim/callback` so both refuse the same things.

use std::collections::BTreeSet;
use std::fmt;

use callback_crypto::CallbackCrypto;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Rejection;

/// Every contacts event tag the simulator can push.
pub const ALL_TAGS: [&str; 10] = [
    "user_add_org",
    "user_modify_org",
    "user_leave_org",
    "org_dept_create",
    "org_dept_modify",
    "org_dept_remove",
    "label_user_change",
    "label_conf_add",
    "label_conf_del",
    "label_conf_modify",
];

/// How a subscription was made; it decides the owner key of the encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `call_back/register_call_back`; owner key = CorpId.
    Registered,
    /// Developer-console HTTP push (`/_sim/callback`); owner key = Client ID.
    Console,
}

/// Where pushes go and how they are protected.
pub struct Subscription {
    pub kind: Kind,
    pub url: String,
    /// Tags to push; the others are dropped.
    pub tags: BTreeSet<String>,
    /// The signature token; secret, kept only to answer `get_call_back`.
    pub token: String,
    /// The EncodingAESKey; secret, kept only to answer `get_call_back`.
    pub aes_key: String,
    /// Signs, encrypts and checks replies.
    pub crypto: CallbackCrypto,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("tags", &self.tags)
            .field("token", &"<redacted>")
            .field("aes_key", &"<redacted>")
            .finish()
    }
}

impl Subscription {
    /// The public view served by `/_sim/callback` (no secrets).
    pub(crate) fn public_json(&self) -> Value {
        json!({"kind": self.kind, "url": self.url, "call_back_tag": self.tags})
    }
}

/// Validates subscription inputs and builds the subscription.
pub(crate) fn build_subscription(
    kind: Kind,
    url: &str,
    tags: Vec<String>,
    token: &str,
    aes_key: &str,
    owner_key: &str,
) -> Result<Subscription, Rejection> {
    let parsed = reqwest::Url::parse(url).map_err(|_| Rejection::param("url"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Rejection::param("url"));
    }
    // Token: letters and digits, 6–32 characters (satisfies both documented ranges).
    if !(6..=32).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Rejection::param("token"));
    }
    if aes_key.len() != 43 || !aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Rejection::new(900004, "不合法的aes key"));
    }
    let tags: BTreeSet<String> = tags.into_iter().collect();
    if tags.is_empty() || tags.iter().any(|t| !ALL_TAGS.contains(&t.as_str())) {
        return Err(Rejection::param("call_back_tag"));
    }
    let crypto = CallbackCrypto::new(token, aes_key, owner_key)
        .map_err(|e| Rejection::new(i64::from(e.code()), e.reason()))?;
    Ok(Subscription {
        kind,
        url: url.to_owned(),
        tags,
        token: token.to_owned(),
        aes_key: aes_key.to_owned(),
        crypto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1234567890123456789012345678901234567890123";

    #[test]
    fn subscription_inputs_are_validated_and_secrets_redacted() {
        let ok = build_subscription(
            Kind::Console,
            "http://127.0.0.1:9/cb",
            vec!["user_add_org".into()],
            "tokenabc",
            KEY,
            "owner",
        )
        .expect("valid");
        let text = format!("{ok:?}");
        assert!(!text.contains("tokenabc") && !text.contains(KEY));
        assert!(ok.tags.contains("user_add_org"));
        assert!(!ok.tags.contains("org_dept_create"));
        let code =
            |r: Result<Subscription, crate::error::Rejection>| r.map(|_| ()).map_err(|e| e.code);
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "nope",
                vec!["user_add_org".into()],
                "tokenabc",
                KEY,
                "o"
            )),
            Err(40035)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["user_add_org".into()],
                "tok",
                KEY,
                "o"
            )),
            Err(40035)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["user_add_org".into()],
                "tokenabc",
                "short",
                "o"
            )),
            Err(900004)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["bogus".into()],
                "tokenabc",
                KEY,
                "o"
            )),
            Err(40035)
        );
    }
}
