//! The published vectors of dingtalk-api.md §5.7, byte for byte, plus the failure cases a
//! receiver meets in practice (wrong key, wrong owner, truncated or garbage input).

use callback_crypto::{CallbackCrypto, CryptoError, EncryptedReply};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// One row of the vector table.
struct Vector {
    token: &'static str,
    aes_key: &'static str,
    owner_key: &'static str,
    timestamp: &'static str,
    nonce: &'static str,
    signature: &'static str,
    encrypt: &'static str,
    plaintext: &'static str,
    prefix: &'static [u8; 16],
}

/// Official doc FAQ (configure-stream-push).
const A: Vector = Vector {
    token: "123456",
    aes_key: "1234567890123456789012345678901234567890123",
    owner_key: "dingsnotzck6pm5veliw",
    timestamp: "1614767836",
    nonce: "A7Co0cJLMzIDtMMI",
    signature: "9a95a004dd16f5c307e849b994173f76aa26e5eb",
    encrypt: "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==",
    plaintext: "success",
    prefix: b"dICkEDLj0eb6yAbc",
};

/// Official `DingCallbackCrypto3.py`.
const B: Vector = Vector {
    token: "mryue",
    aes_key: "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    owner_key: "ding6ccabc44d2c8d38b",
    timestamp: "1608001896814",
    nonce: "WL4PK6yA",
    signature: "03044561471240d4a14bb09372dfcfd4fd0e40cb",
    encrypt: "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3",
    plaintext: r#"{"EventType":"check_url"}"#,
    prefix: b"l7Y3EcX2CU5w8av3",
};

/// Official `DingTalkCrypto.go` / `DingTalkEncryptor.cs`.
const D: Vector = Vector {
    token: "tokenxxxx",
    aes_key: "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
    owner_key: "dingxxxxxx",
    timestamp: "1605695694141",
    nonce: "WelUQl6bCqcBa2fM",
    signature: "f36f4ba5337d426c7d4bca0dbcb06b3ddc1388fc",
    encrypt: "X1VSe9cTJUMZu60d3kyLYTrBq5578ZRJtteU94wG0Q4Uk6E/wQYeJRIC0/UFW5Wkya1Ihz9oXAdLlyC9TRaqsQ==",
    plaintext: "success",
    prefix: b"WelUQl6bCqcBa2fM",
};

const VECTORS: [(&str, Vector); 3] = [("A", A), ("B", B), ("D", D)];

fn crypto(v: &Vector) -> CallbackCrypto {
    CallbackCrypto::new(v.token, v.aes_key, v.owner_key).expect("published vectors have valid keys")
}

#[test]
fn signatures_match_published_vectors() {
    for (name, v) in &VECTORS {
        let c = crypto(v);
        assert_eq!(
            c.signature(v.timestamp, v.nonce, v.encrypt),
            v.signature,
            "vector {name}"
        );
        c.verify_signature(v.signature, v.timestamp, v.nonce, v.encrypt)
            .unwrap_or_else(|e| panic!("vector {name}: {e}"));
    }
}

#[test]
fn decrypt_matches_published_vectors() {
    for (name, v) in &VECTORS {
        let (msg, prefix) = crypto(v).decrypt_with_prefix(v.encrypt).unwrap();
        assert_eq!(msg, v.plaintext, "vector {name}");
        assert_eq!(&prefix, v.prefix, "vector {name}");
    }
}

#[test]
fn reencryption_with_published_prefix_is_byte_exact() {
    for (name, v) in &VECTORS {
        let encrypt = crypto(v)
            .encrypt_with_prefix(v.plaintext, *v.prefix)
            .unwrap();
        assert_eq!(encrypt, v.encrypt, "vector {name}");
    }
}

#[test]
fn any_single_character_change_breaks_the_signature() {
    let c = crypto(&A);
    let mut bad = A.signature.to_owned();
    bad.replace_range(39..40, "a");
    assert_ne!(bad, A.signature);
    let err = c
        .verify_signature(&bad, A.timestamp, A.nonce, A.encrypt)
        .unwrap_err();
    assert!(matches!(err, CryptoError::SignatureMismatch));
    assert_eq!(err.code(), 900_005);
    // A different nonce, timestamp or ciphertext also fails.
    assert!(
        c.verify_signature(A.signature, A.timestamp, "x", A.encrypt)
            .is_err()
    );
    assert!(
        c.verify_signature(A.signature, "1614767837", A.nonce, A.encrypt)
            .is_err()
    );
    assert!(
        c.verify_signature(A.signature, A.timestamp, A.nonce, D.encrypt)
            .is_err()
    );
    // Uppercase hex, a prefix, or nothing at all are mismatches too.
    let upper = A.signature.to_uppercase();
    assert!(
        c.verify_signature(&upper, A.timestamp, A.nonce, A.encrypt)
            .is_err()
    );
    assert!(
        c.verify_signature(&A.signature[..39], A.timestamp, A.nonce, A.encrypt)
            .is_err()
    );
    assert!(
        c.verify_signature("", A.timestamp, A.nonce, A.encrypt)
            .is_err()
    );
}

#[test]
fn wrong_token_fails_signature() {
    let c = CallbackCrypto::new("1234567", A.aes_key, A.owner_key).unwrap();
    assert!(matches!(
        c.verify_signature(A.signature, A.timestamp, A.nonce, A.encrypt),
        Err(CryptoError::SignatureMismatch)
    ));
}

#[test]
fn chinese_messages_round_trip_with_byte_length() {
    let c = crypto(&B);
    let msg = r#"{"EventType":"user_add_org","name":"张三·李四","dept":"研发部🚀"}"#;
    let enc = c.encrypt_with_prefix(msg, *B.prefix).unwrap();
    assert_eq!(c.decrypt(&enc).unwrap(), msg);
    // A reference length computed in chars (the Python SDK's bug) would be shorter than bytes.
    assert!(msg.chars().count() < msg.len());
}

#[test]
fn wrong_owner_key_is_900010_and_names_the_found_key() {
    let c = CallbackCrypto::new(A.token, A.aes_key, "dingsomeoneelse").unwrap();
    let err = c.decrypt(A.encrypt).unwrap_err();
    assert_eq!(err.code(), 900_010);
    match err {
        CryptoError::OwnerKeyMismatch { found } => assert_eq!(found, A.owner_key),
        other => panic!("expected OwnerKeyMismatch, got {other:?}"),
    }
}

#[test]
fn any_of_several_owner_keys_is_accepted_and_the_first_encrypts() {
    let c = CallbackCrypto::with_owner_keys(A.token, A.aes_key, ["appkey123", "", A.owner_key])
        .unwrap();
    assert_eq!(c.decrypt(A.encrypt).unwrap(), "success");
    assert_eq!(c.owner_keys(), ["appkey123", A.owner_key]);
    let only_app = CallbackCrypto::new(A.token, A.aes_key, "appkey123").unwrap();
    let enc = c.encrypt_with_prefix("x", *A.prefix).unwrap();
    assert_eq!(only_app.decrypt(&enc).unwrap(), "x");
}

#[test]
fn empty_owner_keys_or_token_are_rejected() {
    assert!(matches!(
        CallbackCrypto::new(A.token, A.aes_key, ""),
        Err(CryptoError::NoOwnerKey)
    ));
    assert!(matches!(
        CallbackCrypto::with_owner_keys(A.token, A.aes_key, Vec::<String>::new()),
        Err(CryptoError::NoOwnerKey)
    ));
    assert!(matches!(
        CallbackCrypto::new("", A.aes_key, A.owner_key),
        Err(CryptoError::EmptyToken)
    ));
}

#[test]
fn wrong_aes_key_fails_to_decrypt() {
    let c = CallbackCrypto::new(A.token, D.aes_key, A.owner_key).unwrap();
    let err = c.decrypt(A.encrypt).unwrap_err();
    // Garbage plaintext almost always fails the padding check; whatever it fails, it is one of
    // the decryption codes and never a success.
    assert!(
        matches!(err.code(), 900_001 | 900_008 | 900_009 | 900_010),
        "{err:?}"
    );
}

#[test]
fn aes_key_must_be_43_alphanumerics() {
    for bad in [
        "",
        "123456789012345678901234567890123456789012", // 42
        "12345678901234567890123456789012345678901234", // 44
        "1234567890123456789012345678901234567890+23", // base64 but not alnum
        "1234567890123456789012345678901234567890=23",
        "123456789012345678901234567890123456789012é", // 44 bytes, 43 chars
    ] {
        let err = CallbackCrypto::new("t", bad, "o").unwrap_err();
        assert!(matches!(err, CryptoError::InvalidAesKey), "{bad:?}");
        assert_eq!(err.code(), 900_004);
    }
}

#[test]
fn truncated_and_garbage_ciphertexts_are_rejected_without_panic() {
    let c = crypto(&A);
    let cases: [(&str, &str); 7] = [
        ("empty", ""),
        ("not base64", "!!!!"),
        ("missing padding", &A.encrypt[..86]),
        (
            "cut at a block boundary",
            "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOU=",
        ),
        ("one byte", "AA=="),
        (
            "whitespace",
            " YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOU=",
        ),
        (
            "url-safe alphabet",
            "Yvkv-Ge4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOU=",
        ),
    ];
    for (name, input) in cases {
        let err = c.decrypt(input).unwrap_err();
        assert!(matches!(err.code(), 900_008 | 900_009), "{name}: {err:?}");
    }
    // Dropping the last block leaves valid base64 whose padding is whatever the block held.
    let first_block_only = "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl";
    assert!(c.decrypt(first_block_only).is_err());
}

#[test]
fn encrypted_reply_has_dingtalk_field_names_and_verifies() {
    let c = crypto(&A);
    let mut rng = StdRng::seed_from_u64(7);
    let reply = c
        .encrypted_reply("success", "1614767836123", "nEXhMP4r", &mut rng)
        .unwrap();
    let json = serde_json::to_value(&reply).unwrap();
    let obj = json.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["encrypt", "msg_signature", "nonce", "timeStamp"]);
    assert_eq!(obj["timeStamp"], "1614767836123");
    assert_eq!(obj["nonce"], "nEXhMP4r");
    c.verify_signature(
        &reply.msg_signature,
        &reply.time_stamp,
        &reply.nonce,
        &reply.encrypt,
    )
    .unwrap();
    let (msg, prefix) = c.decrypt_with_prefix(&reply.encrypt).unwrap();
    assert_eq!(msg, "success");
    assert!(prefix.iter().all(u8::is_ascii_alphanumeric), "{prefix:?}");
    let back: EncryptedReply = serde_json::from_value(json).unwrap();
    assert_eq!(back, reply);
}

#[test]
fn encrypted_reply_rejects_empty_nonce_and_bad_timestamp() {
    let c = crypto(&A);
    let mut rng = StdRng::seed_from_u64(1);
    let err = c.encrypted_reply("success", "1", "", &mut rng).unwrap_err();
    assert_eq!(err.code(), 900_003);
    let err = c
        .encrypted_reply("success", "soon", "n", &mut rng)
        .unwrap_err();
    assert_eq!(err.code(), 900_002);
}

#[test]
fn two_encryptions_differ_by_their_random_prefix() {
    let c = crypto(&D);
    let mut rng = StdRng::seed_from_u64(42);
    let one = c.encrypt("success", &mut rng).unwrap();
    let two = c.encrypt("success", &mut rng).unwrap();
    assert_ne!(one, two);
    assert_eq!(c.decrypt(&one).unwrap(), c.decrypt(&two).unwrap());
}

#[test]
fn debug_output_hides_token_and_key() {
    let c = crypto(&B);
    let shown = format!("{c:?}");
    assert!(!shown.contains(B.token), "{shown}");
    assert!(!shown.contains(B.aes_key), "{shown}");
    assert!(shown.contains("<redacted>"));
    assert!(shown.contains(B.owner_key));
    // Error messages never repeat the token or key either.
    let err = CallbackCrypto::new(B.token, &B.aes_key[..42], B.owner_key).unwrap_err();
    assert!(!err.to_string().contains(&B.aes_key[..42]));
}
