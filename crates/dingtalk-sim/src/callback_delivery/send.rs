//! One encrypted POST to the callback URL and the check of its reply.
//!
//! A push counts as acknowledged only if the receiver answers HTTP 200 with the JSON
//! `{msg_signature, timeStamp, nonce, encrypt}`, the signature verifies with the subscription's
//! token, and `encrypt` decrypts (with the subscription's owner key) to exactly `success`.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::subscription::Subscription;

/// POSTs one encrypted message and checks the reply; `Err` says why it does not count.
pub(crate) async fn send(
    http: &reqwest::Client,
    sub: &Subscription,
    message: &str,
    now_ms: i64,
    msg_signature: bool,
    timeout: Duration,
    rng: &mut StdRng,
) -> Result<(), String> {
    let encrypt = sub
        .crypto
        .encrypt(message, rng)
        .map_err(|e| format!("encrypting failed: {e}"))?;
    let timestamp = now_ms.to_string();
    let nonce: String = (0..16)
        .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
        .collect();
    let signature = sub.crypto.signature(&timestamp, &nonce, &encrypt);
    let signature_name = if msg_signature {
        "msg_signature"
    } else {
        "signature"
    };
    let response = http
        .post(&sub.url)
        .query(&[
            (signature_name, signature.as_str()),
            ("timestamp", &timestamp),
            ("nonce", &nonce),
        ])
        .json(&json!({"encrypt": encrypt}))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let reply: Value = response
        .json()
        .await
        .map_err(|e| format!("reply is not JSON: {e}"))?;
    let field = |name: &str| reply.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(sig), Some(ts), Some(nonce), Some(enc)) = (
        field("msg_signature"),
        field("timeStamp"),
        field("nonce"),
        field("encrypt"),
    ) else {
        return Err("reply lacks msg_signature, timeStamp, nonce or encrypt".to_owned());
    };
    sub.crypto
        .verify_signature(&sig, &ts, &nonce, &enc)
        .map_err(|e| format!("reply signature: {e}"))?;
    let text = sub
        .crypto
        .decrypt(&enc)
        .map_err(|e| format!("reply decrypt: {e}"))?;
    if text == "success" {
        Ok(())
    } else {
        Err(format!("reply text is {text:?}, not \"success\""))
    }
}
