//! Property tests: encryption round-trips for any message and prefix, and decryption or
//! signature checks never panic on arbitrary input.

use callback_crypto::{CallbackCrypto, check_timestamp};
use proptest::prelude::*;

fn crypto() -> CallbackCrypto {
    CallbackCrypto::new(
        "tokenxxxx",
        "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
        "dingxxxxxx",
    )
    .expect("vector D's key is valid")
}

proptest! {
    #[test]
    fn round_trips_any_message(msg in any::<String>(), prefix in any::<[u8; 16]>()) {
        let c = crypto();
        let enc = c.encrypt_with_prefix(&msg, prefix).unwrap();
        let (back, back_prefix) = c.decrypt_with_prefix(&enc).unwrap();
        prop_assert_eq!(back, msg);
        prop_assert_eq!(back_prefix, prefix);
    }

    #[test]
    fn round_trips_with_any_valid_key(
        key in "[A-Za-z0-9]{43}",
        owner in "[a-z0-9]{1,40}",
        msg in "\\PC{0,200}",
    ) {
        let c = CallbackCrypto::new("t0k3n", &key, &owner).unwrap();
        let enc = c.encrypt_with_prefix(&msg, *b"0123456789ABCDEF").unwrap();
        prop_assert_eq!(c.decrypt(&enc).unwrap(), msg);
    }

    #[test]
    fn decrypt_never_panics_on_strings(input in any::<String>()) {
        let _ = crypto().decrypt(&input);
    }

    #[test]
    fn decrypt_never_panics_on_valid_base64_of_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        use base64::Engine as _;
        let input = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = crypto().decrypt(&input);
    }

    #[test]
    fn signature_is_40_lowercase_hex_and_self_verifies(ts in ".*", nonce in ".*", enc in ".*") {
        let c = crypto();
        let sig = c.signature(&ts, &nonce, &enc);
        prop_assert_eq!(sig.len(), 40);
        prop_assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        prop_assert!(c.verify_signature(&sig, &ts, &nonce, &enc).is_ok());
    }

    #[test]
    fn timestamp_check_never_panics(ts in ".*", now in any::<i64>(), window_ms in any::<u64>()) {
        let _ = check_timestamp(&ts, now, std::time::Duration::from_millis(window_ms));
    }
}
