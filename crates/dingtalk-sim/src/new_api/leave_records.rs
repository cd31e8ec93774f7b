//! `GET /v1.0/contact/empLeaveRecords?startTime=&endTime=&nextToken=&maxResults=`: who left the
//! org in a time window, as `alibabacloud-dingtalk`'s `ListEmpLeaveRecords` reads it:
//! `{nextToken?, records: [{userId, name, stateCode, mobile, leaveTime}]}`.
//!
//! The leave time is the time of the `user_leave_org` event in the event log, so no extra state
//! is kept. Times are ISO 8601 in UTC (`2026-12-07T08:00:00Z`; an offset such as `+08:00` is
//! accepted on input). Choices where the facts are silent: `startTime` and `maxResults` are
//! required and `maxResults` is 1–50 (400 `invalidParameter` / `missingParameter` naming the
//! field otherwise); `nextToken` is the position in the list, and is absent on the last page;
//! `leaveReason` is omitted, since the simulator records none.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{Refusal, int_field, invalid};
use crate::org::Change;
use crate::state::{Shared, lock};

/// Largest `maxResults`.
const MAX_RESULTS: i64 = 50;

/// The endpoint.
pub(super) fn list(shared: &Shared, query: &Value) -> Result<Value, Refusal> {
    let start = match query.get("startTime").and_then(Value::as_str) {
        Some(text) => parse_iso(text).ok_or_else(|| invalid("startTime"))?,
        None => {
            return Err((
                StatusCode::BAD_REQUEST,
                "missingParameter",
                "缺少参数 startTime".to_owned(),
            ));
        }
    };
    let end = match query.get("endTime").and_then(Value::as_str) {
        Some(text) => parse_iso(text).ok_or_else(|| invalid("endTime"))?,
        None => i64::MAX,
    };
    let max = int_field(query, "maxResults")?;
    if !(1..=MAX_RESULTS).contains(&max) {
        return Err(invalid("maxResults"));
    }
    let from = match query.get("nextToken").and_then(Value::as_str) {
        Some(token) if !token.is_empty() => {
            token.parse::<usize>().map_err(|_| invalid("nextToken"))?
        }
        _ => 0,
    };
    let leaves: Vec<(String, i64)> = lock(&shared.events)
        .entries
        .iter()
        .filter(|e| e.time_ms >= start && e.time_ms < end)
        .filter_map(|e| match &e.change {
            Change::UserLeave(ids) => Some(ids.iter().map(|id| (id.clone(), e.time_ms)).collect()),
            _ => None::<Vec<_>>,
        })
        .flatten()
        .collect();
    let org = lock(&shared.org);
    let max = usize::try_from(max).map_err(|_| invalid("maxResults"))?;
    let records: Vec<Value> = leaves
        .iter()
        .skip(from)
        .take(max)
        .map(|(userid, at)| {
            let mut m = Map::new();
            m.insert("userId".into(), json!(userid));
            if let Some(u) = org.departed.get(userid).or_else(|| org.users.get(userid)) {
                m.insert("name".into(), json!(u.name));
                m.insert("stateCode".into(), json!(u.state_code));
                m.insert("mobile".into(), json!(u.mobile));
            }
            m.insert("leaveTime".into(), json!(format_iso(*at)));
            Value::Object(m)
        })
        .collect();
    let mut answer = Map::new();
    let next = from.saturating_add(max);
    if next < leaves.len() {
        answer.insert("nextToken".into(), json!(next.to_string()));
    }
    answer.insert("records".into(), json!(records));
    Ok(Value::Object(answer))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → Unix milliseconds.
pub(crate) fn parse_iso(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Unix milliseconds → `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_iso(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_round_trip_and_offsets_apply() {
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso("2020-02-24T13:58:09Z"), Some(1_582_552_689_000));
        assert_eq!(
            parse_iso("2020-02-24T21:58:09+08:00"),
            Some(1_582_552_689_000)
        );
        assert_eq!(parse_iso("2020-02-24T13:58:09.5Z"), Some(1_582_552_689_500));
        assert_eq!(format_iso(1_582_552_689_999), "2020-02-24T13:58:09Z");
        assert_eq!(format_iso(951_782_400_000), "2000-02-29T00:00:00Z");
        for bad in [
            "2020-02-24",
            "2020-13-01T00:00:00Z",
            "2020-02-24T13:58:09",
            "x020-02-24T13:58:09Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}
