//! Unix milliseconds as the dates the console shows: UTC, to the second, so two pages (and a
//! log line) agree on when something happened.

/// `2026-12-07 15:49:31 UTC`, or the number itself if it is out of range.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Parses a date (`2026-12-07`) or a date and time (`2026-12-07 15:49` / `…:31`, UTC) into
/// Unix milliseconds; `None` when it is neither.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches(" UTC");
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc().timestamp_millis());
        }
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_to_the_second() {
        let ms = parse_date("2026-12-07 15:49:31").unwrap_or_default();
        assert_eq!(format_ms(ms), "2026-12-07 15:49:31 UTC");
        assert_eq!(parse_date("2026-12-07"), parse_date("2026-12-07 00:00"));
        assert_eq!(parse_date("yesterday"), None);
    }
}
