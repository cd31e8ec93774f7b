//! The JSON body DingTalk expects back from a callback receiver (dingtalk-api.md §5.3).
//!
//! The field names are DingTalk's odd mix of snake and camel case (`msg_signature`,
//! `timeStamp`); serde renames pin them so no caller has to remember. The struct derives
//! `Serialize` only through serde's derive, keeping this crate free of a JSON library.

use serde::{Deserialize, Serialize};

/// The encrypted acknowledgement, serialised as
/// `{"msg_signature":…,"timeStamp":…,"nonce":…,"encrypt":…}`.
///
/// Nothing here is secret: the signature and ciphertext are what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedReply {
    /// SHA-1 signature over token, timestamp, nonce and `encrypt`.
    pub msg_signature: String,
    /// The timestamp the signature was computed with.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// The nonce the signature was computed with.
    pub nonce: String,
    /// Base64 ciphertext of the reply text (for an acknowledgement, `success`).
    pub encrypt: String,
}
