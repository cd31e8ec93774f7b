//! Decrypting arbitrary `encrypt` fields must fail cleanly, never panic; and anything that does
//! decrypt must re-encrypt to a ciphertext that decrypts to the same message.
#![no_main]

use base64::Engine as _;
use callback_crypto::CallbackCrypto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Vector D of dingtalk-api.md §5.7; the key is public test data.
    let Ok(crypto) = CallbackCrypto::new(
        "tokenxxxx",
        "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
        "dingxxxxxx",
    ) else {
        return;
    };
    // Try the input both as the text of the field and as raw ciphertext bytes, so the fuzzer
    // reaches the padding and frame checks without having to discover base64 first.
    let as_text = String::from_utf8_lossy(data);
    let as_base64 = base64::engine::general_purpose::STANDARD.encode(data);
    for input in [as_text.as_ref(), as_base64.as_str()] {
        if let Ok(msg) = crypto.decrypt(input) {
            let again = crypto
                .encrypt_with_prefix(&msg, *b"fuzzfuzzfuzzfuzz")
                .map(|enc| crypto.decrypt(&enc));
            assert!(matches!(again, Ok(Ok(ref m)) if *m == msg));
        }
    }
});
