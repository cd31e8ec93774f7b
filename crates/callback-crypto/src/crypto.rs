//! [`CallbackCrypto`]: the keyed half of DingTalk's callback scheme (dingtalk-api.md §5.1).
//!
//! One value holds what a receiver (or the simulator, as sender) configures once: the signature
//! token, the AES key derived from the 43-character EncodingAESKey, and the owner keys it
//! accepts. Everything is synchronous and allocation-light so it can run inside a request
//! handler without a blocking pool.
//!
//! Decisions worth knowing:
//! - The EncodingAESKey is decoded as `base64(aes_key + "=")` **ignoring the unused low bits of
//!   the last character**, as Java's decoder does. A strict decoder rejects about three out of
//!   four real keys (vector B's key ends in `7`, whose low bits are set).
//! - Signatures are compared in constant time, so the comparison does not tell an attacker how
//!   many leading characters were right.
//! - Several owner keys may be accepted at once: DingTalk uses the AppKey for console-configured
//!   push and the CorpId for `register_call_back`, and its own sources disagree on which applies
//!   (§5.1 CONFLICT). The first one is used when encrypting.

use std::fmt;

use aes::Aes256;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use sha1::{Digest as _, Sha1};
use subtle::ConstantTimeEq as _;

use crate::error::CryptoError;
use crate::frame::{self, PREFIX_LEN};
use crate::reply::EncryptedReply;

/// Length of an EncodingAESKey in characters.
const AES_KEY_CHARS: usize = 43;
/// AES block size; CBC ciphertexts are whole multiples of it.
const AES_BLOCK: usize = 16;

/// Decodes the EncodingAESKey like Java's lenient decoder: trailing bits are allowed, and the
/// single `=` we append must be there.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Signs, verifies, encrypts and decrypts DingTalk callbacks for one app.
///
/// `Debug` prints only the owner keys; the token and the key are redacted.
#[derive(Clone)]
pub struct CallbackCrypto {
    /// The signature token ("签名 token"); secret, it authenticates every push.
    token: String,
    /// The AES-256 key decoded from the EncodingAESKey; its first 16 bytes double as the IV.
    key: [u8; 32],
    /// Owner keys (AppKey or CorpId) accepted at the end of a decrypted frame; never empty.
    /// The first one is written when encrypting.
    owner_keys: Vec<String>,
}

impl fmt::Debug for CallbackCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackCrypto")
            .field("token", &"<redacted>")
            .field("key", &"<redacted>")
            .field("owner_keys", &self.owner_keys)
            .finish()
    }
}

impl CallbackCrypto {
    /// Builds the crypto for one app from the console's token and EncodingAESKey and the owner
    /// key (AppKey / Client ID for console-configured push, CorpId for `register_call_back`).
    ///
    /// Fails with [`CryptoError::InvalidAesKey`] unless `aes_key` is 43 characters of
    /// `[A-Za-z0-9]`, [`CryptoError::EmptyToken`] for an empty token and
    /// [`CryptoError::NoOwnerKey`] for an empty owner key.
    pub fn new(token: &str, aes_key: &str, owner_key: &str) -> Result<Self, CryptoError> {
        Self::with_owner_keys(token, aes_key, [owner_key])
    }

    /// Like [`CallbackCrypto::new`], accepting any of several owner keys when decrypting; the
    /// first is used when encrypting. Empty strings are ignored; none left is an error.
    pub fn with_owner_keys<I, S>(
        token: &str,
        aes_key: &str,
        owner_keys: I,
    ) -> Result<Self, CryptoError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if token.is_empty() {
            return Err(CryptoError::EmptyToken);
        }
        let key = decode_aes_key(aes_key)?;
        let owner_keys: Vec<String> = owner_keys
            .into_iter()
            .map(Into::into)
            .filter(|k| !k.is_empty())
            .collect();
        if owner_keys.is_empty() {
            return Err(CryptoError::NoOwnerKey);
        }
        Ok(Self {
            token: token.to_owned(),
            key,
            owner_keys,
        })
    }

    /// The owner keys accepted when decrypting, the one used for encrypting first.
    pub fn owner_keys(&self) -> &[String] {
        &self.owner_keys
    }

    /// The 40-character lowercase hex SHA-1 over `token`, `timestamp`, `nonce` and `encrypt`,
    /// sorted as byte strings and concatenated without separators.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        let mut sha = Sha1::new();
        for part in parts {
            sha.update(part.as_bytes());
        }
        hex::encode(sha.finalize())
    }

    /// Checks `signature` against the one computed from our token, in constant time.
    pub fn verify_signature(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        if bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            Ok(())
        } else {
            Err(CryptoError::SignatureMismatch)
        }
    }

    /// Encrypts `msg` with a fresh 16-character `[A-Za-z0-9]` prefix drawn from `rng`, as the
    /// official Java implementation does.
    pub fn encrypt(&self, msg: &str, rng: &mut impl rand::RngCore) -> Result<String, CryptoError> {
        let mut prefix = [0u8; PREFIX_LEN];
        for byte in &mut prefix {
            *byte = rng.sample(Alphanumeric);
        }
        self.encrypt_with_prefix(msg, prefix)
    }

    /// Encrypts `msg` with a caller-chosen prefix; deterministic, for byte-exact tests.
    pub fn encrypt_with_prefix(&self, msg: &str, prefix: [u8; 16]) -> Result<String, CryptoError> {
        let frame = frame::build(&prefix, msg, &self.owner_keys[0])?;
        let ciphertext = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&frame);
        Ok(STANDARD.encode(ciphertext))
    }

    /// Decrypts an `encrypt` field and returns the message, checking that the frame ends in one
    /// of our owner keys. Never panics on hostile input.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptoError> {
        self.decrypt_frame(encrypt, |parsed| parsed.msg.to_owned())
    }

    /// Decrypts like [`CallbackCrypto::decrypt`] and also returns the random prefix, so tests
    /// can re-encrypt a captured ciphertext byte for byte.
    pub fn decrypt_with_prefix(&self, encrypt: &str) -> Result<(String, [u8; 16]), CryptoError> {
        self.decrypt_frame(encrypt, |parsed| {
            let mut prefix = [0u8; PREFIX_LEN];
            prefix.copy_from_slice(parsed.prefix);
            (parsed.msg.to_owned(), prefix)
        })
    }

    /// Encrypts `msg` and signs it with `timestamp` and `nonce`: the body to answer a callback
    /// with. For an acknowledgement `msg` must be exactly `success`.
    ///
    /// Fails with [`CryptoError::NonceIllegal`] for an empty nonce and
    /// [`CryptoError::TimestampMalformed`] unless `timestamp` is decimal digits.
    pub fn encrypted_reply(
        &self,
        msg: &str,
        timestamp: &str,
        nonce: &str,
        rng: &mut impl rand::RngCore,
    ) -> Result<EncryptedReply, CryptoError> {
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::TimestampMalformed);
        }
        if nonce.is_empty() {
            return Err(CryptoError::NonceIllegal);
        }
        let encrypt = self.encrypt(msg, rng)?;
        Ok(EncryptedReply {
            msg_signature: self.signature(timestamp, nonce, &encrypt),
            time_stamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
            encrypt,
        })
    }

    /// Shared decryption path; `extract` copies what the caller needs out of the borrowed frame.
    fn decrypt_frame<T>(
        &self,
        encrypt: &str,
        extract: impl FnOnce(&frame::Parsed<'_>) -> T,
    ) -> Result<T, CryptoError> {
        let mut buf = STANDARD
            .decode(encrypt)
            .map_err(|source| CryptoError::Base64 { source })?;
        let len = buf.len();
        if len == 0 || len % AES_BLOCK != 0 {
            return Err(CryptoError::CiphertextLength { len });
        }
        let plain = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            // NoPadding only fails on a partial block, which the length check above excludes.
            .map_err(|_| CryptoError::CiphertextLength { len })?;
        let parsed = frame::parse(plain)?;
        if !self
            .owner_keys
            .iter()
            .any(|k| k.as_bytes() == parsed.owner_key)
        {
            return Err(CryptoError::OwnerKeyMismatch {
                found: frame::echo_owner_key(parsed.owner_key),
            });
        }
        Ok(extract(&parsed))
    }

    /// The IV: the first 16 bytes of the key, per DingTalk's scheme.
    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}

/// Turns a 43-character EncodingAESKey into the 32-byte AES key.
fn decode_aes_key(aes_key: &str) -> Result<[u8; 32], CryptoError> {
    if aes_key.len() != AES_KEY_CHARS || !aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CryptoError::InvalidAesKey);
    }
    let mut padded = String::with_capacity(AES_KEY_CHARS + 1);
    padded.push_str(aes_key);
    padded.push('=');
    let bytes = KEY_ENGINE
        .decode(padded)
        .map_err(|_| CryptoError::InvalidAesKey)?;
    bytes.try_into().map_err(|_| CryptoError::InvalidAesKey)
}
