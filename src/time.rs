//! Time as streamworker stores and shows it: whole milliseconds since the Unix epoch (what the
//! scripts take from Redis's `TIME`, and what every stored record holds), durations in whole
//! milliseconds, and times as UTC text. Conversions only: the one clock read here is
//! [`now_ms`]; Redis's clock is read by the broker (`redis_time_ms`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `d` in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// `t` in ms since the Unix epoch; 0 for a time before it.
pub(crate) fn system_time_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(duration_ms).unwrap_or(0)
}

/// `t` in ms since the Unix epoch, rounded up to the next whole millisecond: a due time stored
/// this way is never before the time asked for (a job due at x.3 ms is due at x+1 ms, since a
/// promoter reading x ms from Redis's clock could be 0.7 ms early otherwise); 0 for a time
/// before the epoch.
pub(crate) fn system_time_ms_ceil(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| duration_ms(d) + u64::from(d.subsec_nanos() % 1_000_000 != 0))
        .unwrap_or(0)
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn ms_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// This machine's clock, in ms since the Unix epoch (for display only: what is due is decided
/// by Redis's clock).
pub(crate) fn now_ms() -> u64 {
    system_time_ms(SystemTime::now())
}

/// A `TIME` reply (seconds, microseconds) in ms since the Unix epoch, as the scripts compute
/// `now_ms`.
pub(crate) fn time_reply_ms(secs: u64, micros: u64) -> u64 {
    secs * 1000 + micros / 1000
}

/// The time part of a stream entry id (`<ms>-<seq>`), in ms since the Unix epoch.
pub(crate) fn entry_ms(entry_id: &str) -> Option<u64> {
    entry_id.split_once('-')?.0.parse().ok()
}

/// A time in ms since the Unix epoch as RFC 3339 UTC, to the second:
/// `2026-03-29T00:30:00Z`.
pub(crate) fn utc(ms: u64) -> String {
    let t = ::time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
    t.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}

/// An optional time in ms since the Unix epoch as RFC 3339 UTC, to the second, or `never`:
/// the text of [`utc`] for any time before the year 10000.
pub(crate) fn format_ms(ms: Option<u64>) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or_else(
            || "never".to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_round_up_to_the_next_millisecond() {
        let at = |ns: u64| UNIX_EPOCH + Duration::from_nanos(ns);
        assert_eq!(system_time_ms_ceil(at(5_000_000)), 5);
        assert_eq!(system_time_ms_ceil(at(5_000_001)), 6);
        assert_eq!(system_time_ms_ceil(at(5_999_999)), 6);
        assert_eq!(system_time_ms(at(5_999_999)), 5);
        assert_eq!(system_time_ms_ceil(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn milliseconds_round_trip_and_saturate() {
        assert_eq!(duration_ms(Duration::from_micros(2_999)), 2);
        assert_eq!(duration_ms(Duration::MAX), u64::MAX);
        assert_eq!(
            system_time_ms(ms_system_time(1_774_744_200_123)),
            1_774_744_200_123
        );
        assert_eq!(system_time_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(time_reply_ms(1_700_000_000, 123_999), 1_700_000_000_123);
        assert_eq!(entry_ms("1700000000000-3"), Some(1_700_000_000_000));
        assert_eq!(entry_ms("01JABCDEF"), None);
    }

    #[test]
    fn times_show_as_utc_to_the_second() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_774_744_200_999), "2026-03-29T00:30:00Z");
        assert_eq!(format_ms(Some(1_774_744_200_999)), "2026-03-29T00:30:00Z");
        assert_eq!(format_ms(None), "never");
    }
}
