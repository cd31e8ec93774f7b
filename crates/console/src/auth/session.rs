//! Signed session cookies and the CSRF tokens bound to them.
//!
//! The cookie holds the session itself (`base64url(json).base64url(hmac)`), so the service
//! keeps no session table; HMAC-SHA-256 under the configured key makes it unforgeable, and the
//! MAC also covers a purpose tag, so a value signed for one cookie is worthless in another.
//! Each session carries a random nonce; its CSRF token is `HMAC(key, "csrf|" + nonce)`, which
//! a page embeds in every form and which a cross-site attacker cannot compute or read.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Role;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs sessions. At least 32 bytes; `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

#[derive(Debug, thiserror::Error)]
#[error("session key must be at least 32 bytes, got {len}")]
pub struct SessionKeyError {
    pub len: usize,
}

impl SessionKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SessionKeyError> {
        if bytes.len() < 32 {
            return Err(SessionKeyError { len: bytes.len() });
        }
        Ok(SessionKey(bytes.to_vec()))
    }

    /// A fresh random key: sessions then last only as long as the process.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = vec![0u8; 32];
        rng.fill_bytes(&mut bytes);
        SessionKey(bytes)
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// A signed-in session, as carried in the cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// Unix seconds of the login; bounds the session's whole life.
    pub issued_at: u64,
    /// Unix seconds of the last request; bounds idleness.
    pub last_seen: u64,
    /// Random per login; the CSRF token is derived from it.
    pub nonce: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session cookie is malformed")]
    Malformed,
    #[error("the session cookie's signature is wrong")]
    BadSignature,
    #[error("the session expired")]
    Expired,
}

/// Signs and checks session cookies and CSRF tokens.
#[derive(Debug, Clone)]
pub struct SessionCodec {
    key: SessionKey,
    /// A session unused for longer than this is over.
    idle_timeout_secs: u64,
    /// A session older than this is over, however busy.
    max_age_secs: u64,
}

impl SessionCodec {
    pub fn new(key: SessionKey, idle_timeout_secs: u64, max_age_secs: u64) -> Self {
        SessionCodec {
            key,
            idle_timeout_secs,
            max_age_secs,
        }
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty tag
        // (which never verifies) rather than panic.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key.0) else {
            return Vec::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Signs `payload` for one purpose: `base64url(payload).base64url(mac)`.
    pub fn sign(&self, purpose: &str, payload: &[u8]) -> String {
        let tag = self.mac(purpose, payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks a value made by [`SessionCodec::sign`] for the same purpose.
    pub fn verify(&self, purpose: &str, value: &str) -> Result<Vec<u8>, SessionError> {
        let (payload, tag) = value.split_once('.').ok_or(SessionError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SessionError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionError::Malformed)?;
        let expected = self.mac(purpose, &payload);
        if expected.is_empty() || !bool::from(expected.ct_eq(&tag)) {
            return Err(SessionError::BadSignature);
        }
        Ok(payload)
    }

    /// A new session for a user who just signed in.
    pub fn start(&self, user: &str, role: Role, now: u64, rng: &mut impl RngCore) -> Session {
        Session {
            user: user.to_owned(),
            role,
            issued_at: now,
            last_seen: now,
            nonce: random_nonce(rng),
        }
    }

    pub fn encode(&self, session: &Session) -> String {
        let payload = serde_json::to_vec(session).unwrap_or_default();
        self.sign("session", &payload)
    }

    /// Checks the signature and both timeouts; on success the session is refreshed to `now`.
    pub fn decode(&self, cookie: &str, now: u64) -> Result<Session, SessionError> {
        let payload = self.verify("session", cookie)?;
        let mut session: Session =
            serde_json::from_slice(&payload).map_err(|_| SessionError::Malformed)?;
        let idle = now.saturating_sub(session.last_seen);
        let age = now.saturating_sub(session.issued_at);
        if idle > self.idle_timeout_secs || age > self.max_age_secs {
            return Err(SessionError::Expired);
        }
        session.last_seen = now;
        Ok(session)
    }

    /// The CSRF token for forms of the session (or pre-login form) with this nonce.
    pub fn csrf_token(&self, nonce: &str) -> String {
        hex::encode(self.mac("csrf", nonce.as_bytes()))
    }

    /// Whether `token` is the CSRF token for `nonce`, compared in constant time.
    pub fn csrf_ok(&self, nonce: &str, token: &str) -> bool {
        let expected = self.csrf_token(nonce);
        !token.is_empty() && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
    }

    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_secs
    }
}

/// 128 random bits, hex.
pub fn random_nonce(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> SessionCodec {
        let key = SessionKey::from_bytes(&[7u8; 32]).expect("32 bytes");
        SessionCodec::new(key, 600, 3600)
    }

    #[test]
    fn a_session_round_trips_and_refreshes() {
        let codec = codec();
        let session = codec.start("ann", Role::Operator, 1000, &mut rand::thread_rng());
        let decoded = codec.decode(&codec.encode(&session), 1500).expect("valid");
        assert_eq!(decoded.user, "ann");
        assert_eq!(decoded.last_seen, 1500);
    }

    #[test]
    fn idle_and_old_sessions_expire() {
        let codec = codec();
        let session = codec.start("ann", Role::Viewer, 1000, &mut rand::thread_rng());
        let cookie = codec.encode(&session);
        assert_eq!(codec.decode(&cookie, 1601), Err(SessionError::Expired));
        let mut busy = session.clone();
        busy.last_seen = 4500;
        assert_eq!(
            codec.decode(&codec.encode(&busy), 4601),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let codec = codec();
        let session = codec.start("ann", Role::Viewer, 1000, &mut rand::thread_rng());
        let mut forged = session.clone();
        forged.role = Role::Operator;
        let (_, tag) = codec
            .encode(&session)
            .split_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .expect("dot");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let cookie = format!("{payload}.{tag}");
        assert_eq!(codec.decode(&cookie, 1001), Err(SessionError::BadSignature));
        assert_eq!(codec.decode("garbage", 1001), Err(SessionError::Malformed));
    }

    #[test]
    fn a_value_signed_for_one_purpose_fails_for_another() {
        let codec = codec();
        let signed = codec.sign("login", b"{}");
        assert!(codec.verify("login", &signed).is_ok());
        assert_eq!(
            codec.verify("session", &signed),
            Err(SessionError::BadSignature)
        );
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_nonce() {
        let codec = codec();
        let token = codec.csrf_token("abc");
        assert!(codec.csrf_ok("abc", &token));
        assert!(!codec.csrf_ok("abd", &token));
        assert!(!codec.csrf_ok("abc", ""));
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(SessionKey::from_bytes(&[1u8; 16]).is_err());
        let key = SessionKey::from_bytes(&[0x41u8; 32]).expect("32 bytes");
        assert!(!format!("{key:?}").contains("AAAA"));
    }
}
