//! DingTalk callback crypto: signatures, AES encryption and the freshness check for DingTalk's
//! HTTP event push (the scheme in `/work/shared/dingtalk-api.md` §5).
//!
//! DingTalk signs each push with a shared token and encrypts its body with AES-256-CBC under a
//! key derived from the console's "EncodingAESKey". Both the receiver in `dingsync` and the
//! simulator's sender use this crate, which is why it is checked byte for byte against vectors
//! published by independent implementations instead of only against itself.
//!
//! The crate is pure: no I/O, no clock and no global RNG. The caller passes `now` to
//! [`check_timestamp`] and an RNG to [`CallbackCrypto::encrypt`], and parses the decrypted JSON
//! elsewhere (`dingtalk-proto::events`).
//!
//! # Layout
//! - `crypto` – [`CallbackCrypto`]: key derivation, signature, encrypt/decrypt, the reply body.
//! - `frame` – the plaintext frame (random prefix, length, message, owner key, 32-byte padding)
//!   without any cipher, so malformed frames can be tested directly.
//! - `timestamp` – [`check_timestamp`], the replay window over second- or millisecond-stamps.
//! - `reply` – [`EncryptedReply`], the JSON shape DingTalk expects back.
//! - `error` – [`CryptoError`], carrying DingTalk's 900001–900010 meanings.
//!
//! # Example
//! ```
//! use callback_crypto::CallbackCrypto;
//!
//! let crypto = CallbackCrypto::new(
//!     "123456",
//!     "1234567890123456789012345678901234567890123",
//!     "dingsnotzck6pm5veliw",
//! )?;
//! let encrypt = "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==";
//! crypto.verify_signature(
//!     "9a95a004dd16f5c307e849b994173f76aa26e5eb",
//!     "1614767836",
//!     "A7Co0cJLMzIDtMMI",
//!     encrypt,
//! )?;
//! assert_eq!(crypto.decrypt(encrypt)?, "success");
//! # Ok::<(), callback_crypto::CryptoError>(())
//! ```

mod crypto;
mod error;
mod frame;
mod reply;
mod timestamp;

pub use crypto::CallbackCrypto;
pub use error::CryptoError;
pub use reply::EncryptedReply;
pub use timestamp::check_timestamp;
