//! The plaintext frame inside a callback's AES ciphertext, without any cipher.
//!
//! ```text
//! random(16) ‖ msg_len (u32, big-endian, UTF-8 *bytes*) ‖ msg ‖ owner_key ‖ padding
//! ```
//!
//! Padding is PKCS#7-style over **32-byte** blocks (1..=32 bytes, each equal to the count; an
//! aligned frame gets a whole extra block). The AES block is 16 bytes, so DingTalk's choice of 32
//! is not what a generic PKCS#7 helper would do: the published vectors carry pad counts of 17, 27
//! and 31, which only fit 32-byte blocks. Some official SDKs pad to 16; their output still
//! unpads here because the decoder only reads the count from the last byte.
//!
//! Keeping framing apart from AES lets the unit tests hit every malformed-frame branch with
//! hand-built byte strings instead of having to forge ciphertexts.

use crate::error::CryptoError;

/// Length of the random prefix.
pub(crate) const PREFIX_LEN: usize = 16;
/// Length of the big-endian message length field.
const LEN_FIELD: usize = 4;
/// DingTalk's padding block (not the AES block size).
const PAD_BLOCK: usize = 32;
/// Longest owner key echoed back in [`CryptoError::OwnerKeyMismatch`].
const MAX_ECHOED_OWNER_KEY: usize = 64;

/// Builds the padded plaintext for `msg`, ready for AES-CBC without further padding.
pub(crate) fn build(
    prefix: &[u8; PREFIX_LEN],
    msg: &str,
    owner_key: &str,
) -> Result<Vec<u8>, CryptoError> {
    let msg_len = u32::try_from(msg.len()).map_err(|_| CryptoError::PlaintextIllegal {
        reason: "message longer than 4 GiB",
        source: None,
    })?;
    let unpadded = PREFIX_LEN + LEN_FIELD + msg.len() + owner_key.len();
    let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
    let mut frame = Vec::with_capacity(unpadded + pad);
    frame.extend_from_slice(prefix);
    frame.extend_from_slice(&msg_len.to_be_bytes());
    frame.extend_from_slice(msg.as_bytes());
    frame.extend_from_slice(owner_key.as_bytes());
    // `pad` is in 1..=32, so the cast cannot truncate.
    frame.resize(unpadded + pad, pad as u8);
    Ok(frame)
}

/// A parsed frame, borrowing from the decrypted buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed<'a> {
    /// The 16 random bytes; only tests look at them (to re-encrypt byte for byte).
    pub(crate) prefix: &'a [u8],
    /// The message, already checked to be UTF-8.
    pub(crate) msg: &'a str,
    /// Whatever follows the message: the owner key, still to be checked by the caller.
    pub(crate) owner_key: &'a [u8],
}

/// Strips the padding and splits a decrypted frame. Never panics, whatever the bytes.
pub(crate) fn parse(padded: &[u8]) -> Result<Parsed<'_>, CryptoError> {
    let &last = padded.last().ok_or(CryptoError::BadPadding)?;
    let pad = usize::from(last);
    if !(1..=PAD_BLOCK).contains(&pad) || pad > padded.len() {
        return Err(CryptoError::BadPadding);
    }
    let (body, padding) = padded.split_at(padded.len() - pad);
    if padding.iter().any(|&b| b != last) {
        return Err(CryptoError::BadPadding);
    }
    let too_short = CryptoError::FrameTooShort { len: body.len() };
    let (prefix, rest) = body.split_at_checked(PREFIX_LEN).ok_or(too_short)?;
    let (len_field, rest) = rest
        .split_first_chunk::<LEN_FIELD>()
        .ok_or(CryptoError::FrameTooShort { len: body.len() })?;
    let declared = u32::from_be_bytes(*len_field);
    let (msg, owner_key) = usize::try_from(declared)
        .ok()
        .and_then(|len| rest.split_at_checked(len))
        .ok_or(CryptoError::LengthMismatch {
            declared: u64::from(declared),
            available: rest.len(),
        })?;
    let msg = std::str::from_utf8(msg).map_err(|e| CryptoError::PlaintextIllegal {
        reason: "decrypted message is not UTF-8",
        source: Some(e),
    })?;
    Ok(Parsed {
        prefix,
        msg,
        owner_key,
    })
}

/// The owner key as printable text for an error message, cut to a sane length.
pub(crate) fn echo_owner_key(owner_key: &[u8]) -> String {
    String::from_utf8_lossy(owner_key)
        .chars()
        .take(MAX_ECHOED_OWNER_KEY)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn pads_to_32_byte_blocks_with_the_count() {
        // 16 + 4 + 7 + 20 = 47 bytes → 17 bytes of padding, as vector A of the API notes.
        let frame = build(&PREFIX, "success", "dingsnotzck6pm5veliw").unwrap();
        assert_eq!(frame.len(), 64);
        assert!(frame[47..].iter().all(|&b| b == 17));
    }

    #[test]
    fn aligned_frame_gets_a_whole_block_of_padding() {
        // 16 + 4 + 12 + 0 = 32 bytes → a full extra block of 32s.
        let frame = build(&PREFIX, "twelve bytes", "").unwrap();
        assert_eq!(frame.len(), 64);
        assert!(frame[32..].iter().all(|&b| b == 32));
        assert_eq!(parse(&frame).unwrap().msg, "twelve bytes");
    }

    #[test]
    fn length_field_counts_utf8_bytes_not_chars() {
        let frame = build(&PREFIX, "张三", "corp").unwrap();
        assert_eq!(&frame[16..20], &6u32.to_be_bytes());
        let parsed = parse(&frame).unwrap();
        assert_eq!(parsed.msg, "张三");
        assert_eq!(parsed.owner_key, b"corp");
        assert_eq!(parsed.prefix, &PREFIX);
    }

    #[test]
    fn sixteen_byte_padding_from_other_sdks_still_parses() {
        let mut frame = Vec::from(PREFIX);
        frame.extend_from_slice(&7u32.to_be_bytes());
        frame.extend_from_slice(b"successding");
        // 16 + 4 + 11 = 31 → pad to 32 with a single 0x01.
        frame.push(1);
        let parsed = parse(&frame).unwrap();
        assert_eq!(parsed.msg, "success");
        assert_eq!(parsed.owner_key, b"ding");
    }

    #[test]
    fn rejects_pad_count_zero_or_above_32() {
        let mut frame = build(&PREFIX, "success", "ding").unwrap();
        let last = frame.len() - 1;
        frame[last] = 0;
        assert!(matches!(parse(&frame), Err(CryptoError::BadPadding)));
        frame[last] = 33;
        assert!(matches!(parse(&frame), Err(CryptoError::BadPadding)));
    }

    #[test]
    fn rejects_inconsistent_pad_bytes() {
        let mut frame = build(&PREFIX, "success", "dingsnotzck6pm5veliw").unwrap();
        frame[50] = 3;
        assert!(matches!(parse(&frame), Err(CryptoError::BadPadding)));
    }

    #[test]
    fn rejects_pad_longer_than_buffer_and_empty_buffer() {
        assert!(matches!(parse(&[5, 5]), Err(CryptoError::BadPadding)));
        assert!(matches!(parse(&[]), Err(CryptoError::BadPadding)));
    }

    #[test]
    fn rejects_frames_too_short_for_the_header() {
        let short = [1u8; 18];
        let err = parse(&short).unwrap_err();
        assert!(
            matches!(err, CryptoError::FrameTooShort { len: 17 }),
            "{err:?}"
        );
        assert_eq!(err.code(), 900_009);
    }

    #[test]
    fn rejects_declared_length_beyond_the_buffer() {
        let mut frame = build(&PREFIX, "success", "ding").unwrap();
        frame[16..20].copy_from_slice(&1000u32.to_be_bytes());
        match parse(&frame) {
            Err(CryptoError::LengthMismatch {
                declared,
                available,
            }) => {
                assert_eq!(declared, 1000);
                assert_eq!(available, 11);
            }
            other => panic!("expected LengthMismatch, got {other:?}"),
        }
    }

    #[test]
    fn rejects_non_utf8_message() {
        let mut frame = build(&PREFIX, "ab", "ding").unwrap();
        frame[20] = 0xff;
        let err = parse(&frame).unwrap_err();
        assert_eq!(err.code(), 900_001);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn echoed_owner_key_is_bounded() {
        assert_eq!(echo_owner_key(&[b'x'; 500]).len(), 64);
        assert_eq!(echo_owner_key(b"ding\xff"), "ding\u{fffd}");
    }
}
