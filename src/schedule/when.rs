//! When a schedule fires: its ticks as ms since the Unix epoch, from a cron expression in a
//! time zone or from a fixed interval. Pure time arithmetic: no clock is read and nothing is
//! stored here.

use crate::error::{Error, Result};
use chrono::{DateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use std::time::Duration;

/// Most missed ticks counted for a log line; beyond it the count says "at least".
const MAX_COUNTED: usize = 10_000;

/// When a schedule fires.
#[derive(Debug, Clone)]
pub(crate) enum When {
    /// A cron expression (5 fields, or 6 with seconds first) evaluated in a time zone.
    Cron {
        /// The expression as given.
        expr: String,
        /// The expression parsed.
        cron: Box<Cron>,
        /// The zone it is evaluated in.
        tz: Tz,
    },
    /// Every `interval`, at the multiples of it since the Unix epoch (UTC), so every scheduler
    /// agrees on the ticks without talking to the others.
    Every(Duration),
}

impl When {
    /// Fires at the times of the cron expression `expr` in the IANA zone `tz` (default UTC).
    pub(crate) fn cron(expr: &str, tz: Option<&str>) -> Result<When> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| {
                Error::Config(format!(
                    "cron expression {expr:?} does not parse: {e} (use 5 fields, \
                     `min hour day month weekday`, or 6 with seconds first)"
                ))
            })?;
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                Error::Config(format!(
                    "unknown time zone {name:?}: use an IANA name such as Europe/Paris or UTC"
                ))
            })?,
        };
        Ok(When::Cron {
            expr: expr.to_string(),
            cron: Box::new(cron),
            tz,
        })
    }

    /// Fires every `interval`: a whole number of seconds, at least 1 s.
    pub(crate) fn every(interval: Duration) -> Result<When> {
        if interval < Duration::from_secs(1) || interval.subsec_millis() != 0 {
            return Err(Error::Config(format!(
                "interval {} is not a whole number of seconds of at least 1 s",
                humantime::format_duration(interval)
            )));
        }
        Ok(When::Every(interval))
    }

    /// `cron 0 */5 * * * * (Europe/Paris)` or `every 5m`.
    pub(crate) fn describe(&self) -> String {
        match self {
            When::Cron { expr, tz, .. } => format!("cron {expr} ({tz})"),
            When::Every(iv) => format!("every {}", humantime::format_duration(*iv)),
        }
    }

    /// An interval in ms.
    fn interval_ms(iv: &Duration) -> u64 {
        iv.as_millis() as u64
    }

    /// The time `ms` in zone `tz`, to the whole second.
    fn at(tz: &Tz, ms: u64) -> Option<DateTime<Tz>> {
        // croner works in whole seconds: drop the milliseconds.
        tz.timestamp_millis_opt(i64::try_from(ms).ok()?)
            .single()?
            .with_nanosecond(0)
    }

    /// The latest tick at or before `now_ms`.
    pub(crate) fn latest_at_or_before(&self, now_ms: u64) -> Option<u64> {
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                Some(now_ms - now_ms % iv)
            }
            When::Cron { cron, tz, .. } => {
                let now = When::at(tz, now_ms)?;
                let t = cron.find_previous_occurrence(&now, true).ok()?;
                u64::try_from(t.timestamp_millis()).ok()
            }
        }
    }

    /// The first tick after `now_ms`.
    pub(crate) fn next_after(&self, now_ms: u64) -> Option<u64> {
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                Some(now_ms - now_ms % iv + iv)
            }
            When::Cron { cron, tz, .. } => {
                let now = When::at(tz, now_ms)?;
                let t = cron.find_next_occurrence(&now, false).ok()?;
                u64::try_from(t.timestamp_millis()).ok()
            }
        }
    }

    /// How many ticks fall in `(after_ms, up_to_ms]`, counting at most [`MAX_COUNTED`].
    pub(crate) fn ticks_between(&self, after_ms: u64, up_to_ms: u64) -> usize {
        if up_to_ms <= after_ms {
            return 0;
        }
        match self {
            When::Every(iv) => {
                let iv = When::interval_ms(iv);
                ((up_to_ms / iv - after_ms / iv) as usize).min(MAX_COUNTED)
            }
            When::Cron { cron, tz, .. } => {
                let Some(after) = When::at(tz, after_ms) else {
                    return 0;
                };
                cron.iter_after(after)
                    .take(MAX_COUNTED)
                    .take_while(|t| {
                        u64::try_from(t.timestamp_millis()).is_ok_and(|t| t <= up_to_ms)
                    })
                    .count()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    /// 2026-03-29T00:30:00Z, the night Europe/Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    const DST_NIGHT: u64 = 1_774_744_200_000;

    #[test]
    fn cron_ticks_with_and_without_seconds() {
        let five = When::cron("*/5 * * * *", None).unwrap();
        assert_eq!(five.latest_at_or_before(7 * MIN + 1), Some(5 * MIN));
        assert_eq!(
            five.latest_at_or_before(5 * MIN),
            Some(5 * MIN),
            "inclusive"
        );
        assert_eq!(five.next_after(5 * MIN), Some(10 * MIN), "exclusive");
        assert_eq!(five.next_after(5 * MIN + 500), Some(10 * MIN));
        assert_eq!(five.ticks_between(0, HOUR), 12);
        let six = When::cron("*/10 * * * * *", None).unwrap();
        assert_eq!(six.latest_at_or_before(25_400), Some(20_000));
        assert_eq!(six.next_after(25_400), Some(30_000));
        assert!(When::cron("61 * * * *", None).is_err());
        assert!(When::cron("* * *", None).is_err());
    }

    #[test]
    fn a_cron_time_zone_follows_local_time_through_daylight_saving() {
        let utc = When::cron("0 0 9 * * *", None).unwrap();
        let paris = When::cron("0 0 9 * * *", Some("Europe/Paris")).unwrap();
        // The day before the change Paris is UTC+1; the day after, UTC+2.
        assert_eq!(
            utc.next_after(DST_NIGHT),
            Some(DST_NIGHT + 8 * HOUR + 30 * MIN)
        );
        assert_eq!(
            paris.next_after(DST_NIGHT),
            Some(DST_NIGHT + 6 * HOUR + 30 * MIN),
            "09:00 CEST = 07:00 UTC"
        );
        assert_eq!(
            paris.next_after(DST_NIGHT - 24 * HOUR),
            Some(DST_NIGHT - 24 * HOUR + 7 * HOUR + 30 * MIN),
            "09:00 CET = 08:00 UTC"
        );
        assert!(When::cron("* * * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn intervals_tick_at_multiples_since_the_epoch() {
        let every = When::every(Duration::from_secs(300)).unwrap();
        assert_eq!(every.latest_at_or_before(7 * MIN), Some(5 * MIN));
        assert_eq!(every.next_after(7 * MIN), Some(10 * MIN));
        assert_eq!(every.next_after(10 * MIN), Some(15 * MIN));
        assert_eq!(every.ticks_between(5 * MIN, 20 * MIN), 3);
        assert_eq!(every.ticks_between(20 * MIN, 20 * MIN), 0);
        assert!(When::every(Duration::from_millis(500)).is_err());
        assert!(When::every(Duration::from_millis(1500)).is_err());
    }
}
