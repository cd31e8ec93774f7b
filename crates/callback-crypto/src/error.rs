//! The one error type of this crate.
//!
//! DingTalk numbers its callback-crypto failures 900001–900010 (dingtalk-api.md §5.7). We keep
//! those meanings so a log line or metric can be matched against DingTalk's own documentation,
//! but split a few codes into several variants where the caller reacts differently (a stale
//! timestamp is a replay or a clock problem, a malformed one is a broken sender). No variant
//! ever carries the token, the AES key or a decrypted plaintext.

use thiserror::Error;

/// Why a callback could not be verified, decrypted or encrypted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// 900001: the message cannot be framed (longer than 4 GiB) or the decrypted message is
    /// not UTF-8.
    #[error("callback plaintext is illegal (900001): {reason}")]
    PlaintextIllegal {
        /// What was wrong, in words (never the plaintext itself).
        reason: &'static str,
        /// The UTF-8 error when the decrypted message was not text.
        #[source]
        source: Option<std::str::Utf8Error>,
    },

    /// 900002: the timestamp is not a decimal number of seconds or milliseconds.
    #[error("callback timestamp is malformed (900002)")]
    TimestampMalformed,

    /// 900002: the timestamp is well formed but outside the accepted window around now.
    #[error("callback timestamp is outside the accepted window (900002): {skew_ms} ms from now")]
    TimestampStale {
        /// Signed distance from now to the timestamp in milliseconds (negative = in the past).
        skew_ms: i64,
    },

    /// 900003: the nonce is empty.
    #[error("callback nonce is illegal (900003)")]
    NonceIllegal,

    /// 900004: the EncodingAESKey is not 43 characters of `[A-Za-z0-9]`.
    #[error("invalid callback AES key (900004): expected 43 characters of [A-Za-z0-9]")]
    InvalidAesKey,

    /// 900005: the signature does not match the one computed from the token.
    #[error("callback signature mismatch (900005)")]
    SignatureMismatch,

    /// 900006: no signature can be computed because the configured token is empty.
    #[error("callback signature cannot be computed (900006): the token is empty")]
    EmptyToken,

    /// 900008: the `encrypt` field is not standard Base64.
    #[error("callback ciphertext is not valid base64 (900008)")]
    Base64 {
        /// The decoder's complaint (it names a position, never the content).
        #[source]
        source: base64::DecodeError,
    },

    /// 900008: the ciphertext is empty or not a whole number of AES blocks.
    #[error("callback ciphertext length {len} is not a positive multiple of 16 (900008)")]
    CiphertextLength {
        /// Length of the decoded ciphertext in bytes.
        len: usize,
    },

    /// 900008: the decrypted padding is not 1–32 copies of its own length; usually a wrong key.
    #[error("callback padding is invalid (900008); wrong AES key?")]
    BadPadding,

    /// 900009: the 4-byte length prefix claims more bytes than the plaintext holds.
    #[error("callback message length {declared} exceeds the {available} bytes available (900009)")]
    LengthMismatch {
        /// Length the frame declares.
        declared: u64,
        /// Bytes actually present after the header.
        available: usize,
    },

    /// 900009: the unpadded plaintext is shorter than the 20-byte header.
    #[error("callback plaintext of {len} bytes is shorter than its 20-byte header (900009)")]
    FrameTooShort {
        /// Bytes left after removing the padding.
        len: usize,
    },

    /// 900010: the trailing owner key (AppKey or CorpId) is not one we accept.
    #[error("callback owner key {found:?} is not accepted (900010)")]
    OwnerKeyMismatch {
        /// The owner key found in the message (an AppKey or CorpId, not a secret), cut to 64
        /// characters so a garbage frame cannot flood a log line.
        found: String,
    },

    /// 900010: the crypto was configured without any owner key to accept.
    #[error("no callback owner key configured (900010)")]
    NoOwnerKey,
}

impl CryptoError {
    /// DingTalk's numeric code for this failure (900001–900010).
    pub fn code(&self) -> u32 {
        match self {
            Self::PlaintextIllegal { .. } => 900_001,
            Self::TimestampMalformed | Self::TimestampStale { .. } => 900_002,
            Self::NonceIllegal => 900_003,
            Self::InvalidAesKey => 900_004,
            Self::SignatureMismatch => 900_005,
            Self::EmptyToken => 900_006,
            Self::Base64 { .. } | Self::CiphertextLength { .. } | Self::BadPadding => 900_008,
            Self::LengthMismatch { .. } | Self::FrameTooShort { .. } => 900_009,
            Self::OwnerKeyMismatch { .. } | Self::NoOwnerKey => 900_010,
        }
    }

    /// A short, stable, low-cardinality name for metric labels and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PlaintextIllegal { .. } => "plaintext_illegal",
            Self::TimestampMalformed => "timestamp_malformed",
            Self::TimestampStale { .. } => "timestamp_stale",
            Self::NonceIllegal => "nonce_illegal",
            Self::InvalidAesKey => "invalid_aes_key",
            Self::SignatureMismatch => "signature_mismatch",
            Self::EmptyToken => "empty_token",
            Self::Base64 { .. } | Self::CiphertextLength { .. } | Self::BadPadding => {
                "decrypt_failed"
            }
            Self::LengthMismatch { .. } | Self::FrameTooShort { .. } => "length_mismatch",
            Self::OwnerKeyMismatch { .. } | Self::NoOwnerKey => "owner_key_mismatch",
        }
    }
}
