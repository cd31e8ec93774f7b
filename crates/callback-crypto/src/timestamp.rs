//! The freshness check on a callback's `timestamp` query parameter.
//!
//! DingTalk's examples use both seconds (`1614767836`) and milliseconds (`1608001896814`) and no
//! source settles the unit (dingtalk-api.md §5.2), so we decide by magnitude: values below
//! 10^11 are seconds (10^11 s is the year 5138), the rest milliseconds (10^11 ms is 1973). A
//! seconds value stands for a whole second, so it is accepted when any instant of that second
//! lies inside the window; otherwise a sender whose clock is exact would be rejected at the
//! edge for rounding down.
//!
//! `now` is passed in so callers (and tests) control the clock.

use std::time::Duration;

use crate::error::CryptoError;

/// Values at or above this are milliseconds, below it seconds.
const MS_THRESHOLD: i64 = 100_000_000_000;

/// Checks that `timestamp` (decimal seconds or milliseconds since the Unix epoch) lies within
/// `window` of `now_ms` in either direction.
///
/// Errors with [`CryptoError::TimestampMalformed`] for anything but 1–19 ASCII digits and
/// [`CryptoError::TimestampStale`] when outside the window (both DingTalk code 900002).
pub fn check_timestamp(timestamp: &str, now_ms: i64, window: Duration) -> Result<(), CryptoError> {
    let (earliest_ms, latest_ms) = parse_ms_range(timestamp)?;
    // Windows beyond i64 milliseconds (292 million years) behave like "any time".
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let lower = now_ms.saturating_sub(window_ms);
    let upper = now_ms.saturating_add(window_ms);
    if latest_ms < lower {
        Err(CryptoError::TimestampStale {
            skew_ms: latest_ms.saturating_sub(now_ms),
        })
    } else if earliest_ms > upper {
        Err(CryptoError::TimestampStale {
            skew_ms: earliest_ms.saturating_sub(now_ms),
        })
    } else {
        Ok(())
    }
}

/// Parses the timestamp into the inclusive range of milliseconds it may stand for.
fn parse_ms_range(timestamp: &str) -> Result<(i64, i64), CryptoError> {
    // `i64::from_str` accepts a leading `+` or `-`; DingTalk sends bare digits only.
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::TimestampMalformed);
    }
    let value: i64 = timestamp
        .parse()
        .map_err(|_| CryptoError::TimestampMalformed)?;
    if value < MS_THRESHOLD {
        // value < 10^11, so value * 1000 + 999 < 10^14 and cannot overflow.
        Ok((value * 1000, value * 1000 + 999))
    } else {
        Ok((value, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MIN: Duration = Duration::from_secs(300);
    /// 2021-03-03T10:37:16Z, the moment vector A's timestamp names.
    const NOW_MS: i64 = 1_614_767_836_000;

    #[test]
    fn accepts_seconds_and_milliseconds_near_now() {
        check_timestamp("1614767836", NOW_MS, FIVE_MIN).unwrap();
        check_timestamp("1614767836000", NOW_MS, FIVE_MIN).unwrap();
        check_timestamp("1614768135999", NOW_MS, FIVE_MIN).unwrap();
    }

    #[test]
    fn rejects_milliseconds_just_outside_the_window() {
        let err = check_timestamp("1614768136001", NOW_MS, FIVE_MIN).unwrap_err();
        assert!(matches!(
            err,
            CryptoError::TimestampStale { skew_ms: 300_001 }
        ));
        let err = check_timestamp("1614767535999", NOW_MS, FIVE_MIN).unwrap_err();
        assert!(matches!(
            err,
            CryptoError::TimestampStale { skew_ms: -300_001 }
        ));
        assert_eq!(err.code(), 900_002);
    }

    #[test]
    fn seconds_cover_their_whole_second() {
        // Second 1614767535 spans ...535000..=...535999; now - 300 s = ...536000 is after it.
        assert!(check_timestamp("1614767535", NOW_MS, FIVE_MIN).is_err());
        // One second later the span touches the window's lower edge.
        check_timestamp("1614767536", NOW_MS, FIVE_MIN).unwrap();
        // A sender 300.5 s behind, reported in whole seconds, still passes if in the window.
        check_timestamp("1614768136", NOW_MS, FIVE_MIN).unwrap();
        assert!(check_timestamp("1614768137", NOW_MS, FIVE_MIN).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            " 1614767836",
            "+1614767836",
            "-5",
            "1.5",
            "abc",
            "16147678360000000000000",
        ] {
            let err = check_timestamp(bad, NOW_MS, FIVE_MIN).unwrap_err();
            assert!(
                matches!(err, CryptoError::TimestampMalformed),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        assert!(check_timestamp("9223372036854775807", 0, Duration::MAX).is_ok());
        assert!(check_timestamp("0", i64::MAX, FIVE_MIN).is_err());
        assert!(check_timestamp("99999999999", i64::MIN, Duration::ZERO).is_err());
    }
}
