//! DNSDB query parameters (`reference/dnsdb.md` §1.4) and time fences.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use dnsrecall_core::Entry;

use crate::QueryError;

/// `limit` when a query gives none.
pub const DEFAULT_LIMIT: u64 = 10_000;

//---- Params ----------------------------------------------------------------

/// Query parameters (§1.4), checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Most rows; one more row makes the answer `limited`.
    pub limit: u64,
    /// Rows (that pass the fences) skipped first.
    pub offset: u64,
    pub time_first_before: Option<u64>,
    pub time_first_after: Option<u64>,
    pub time_last_before: Option<u64>,
    pub time_last_after: Option<u64>,
    /// Times as RFC 3339 text rather than epoch seconds.
    pub humantime: bool,
    /// Summaries stop once the counts add up to this.
    pub max_count: Option<u64>,
}

/// DNSDB's lenient booleans.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "t" | "true" | "True" | "TRUE" | "1" => Some(true),
        "f" | "false" | "False" | "FALSE" | "0" => Some(false),
        _ => None,
    }
}

/// Seconds since the epoch now (0 if the clock is before 1970).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the parameters; unknown ones are ignored. `limit` is capped at
/// `max_results` (`limit=0` asks for `max_results`); negative times are
/// seconds before `now`.
pub fn parse_params(
    raw: &HashMap<String, String>,
    max_results: u64,
    now: u64,
) -> Result<Params, QueryError> {
    let bad = |name: &'static str, value: &str| QueryError::BadParameter {
        name,
        value: value.to_string(),
    };
    let number = |name: &'static str| -> Result<Option<u64>, QueryError> {
        raw.get(name)
            .map(|v| v.trim().parse::<u64>().map_err(|_| bad(name, v)))
            .transpose()
    };
    let time = |name: &'static str| -> Result<Option<u64>, QueryError> {
        raw.get(name)
            .map(|v| {
                let t = v.trim().parse::<i64>().map_err(|_| bad(name, v))?;
                Ok(relative_to(t, now))
            })
            .transpose()
    };
    let boolean = |name: &'static str| -> Result<Option<bool>, QueryError> {
        raw.get(name)
            .map(|v| parse_bool(v.trim()).ok_or_else(|| bad(name, v)))
            .transpose()
    };
    let limit = match number("limit")? {
        None => DEFAULT_LIMIT.min(max_results),
        Some(0) => max_results,
        Some(n) => n.min(max_results),
    };
    // Rows are always aggregated; the value is checked, then ignored.
    let _aggregated = boolean("aggr")?;
    let max_count = number("max_count")?;
    if max_count == Some(0) {
        return Err(QueryError::ZeroMaxCount);
    }
    Ok(Params {
        limit,
        offset: number("offset")?.unwrap_or(0),
        time_first_before: time("time_first_before")?,
        time_first_after: time("time_first_after")?,
        time_last_before: time("time_last_before")?,
        time_last_after: time("time_last_after")?,
        humantime: boolean("humantime")?.unwrap_or(false),
        max_count,
    })
}

/// Epoch seconds, or (negative) seconds before `now`.
fn relative_to(t: i64, now: u64) -> u64 {
    if t < 0 {
        now.saturating_sub(t.unsigned_abs())
    } else {
        t.unsigned_abs()
    }
}

impl Params {
    /// At most `limit` rows, no fence, no offset.
    pub fn with_limit(limit: u64) -> Params {
        Params {
            limit,
            ..Params::default()
        }
    }

    /// Whether a record passes the time fences (all inclusive).
    pub fn fences(&self, entry: &Entry) -> bool {
        let (first, last) = (entry.seen.time_first, entry.seen.time_last);
        self.time_first_before.is_none_or(|t| first <= t)
            && self.time_first_after.is_none_or(|t| first >= t)
            && self.time_last_before.is_none_or(|t| last <= t)
            && self.time_last_after.is_none_or(|t| last >= t)
    }
}

//---- TimeFence -------------------------------------------------------------

/// The two-ended time window of dnsdbq's `-A`/`-B` and the web UI's
/// `after`/`before`, with dnsdbq's `-c` as `strict`.
///
/// Loose (the default): a record qualifies if its sightings *overlap* the
/// window (last seen after `after`, first seen before `before`). Strict: its
/// sightings lie *inside* the window (first seen after `after`, last seen
/// before `before`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeFence {
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub strict: bool,
}

impl TimeFence {
    /// Reads `after` and `before` with [`parse_time`].
    pub fn parse(
        after: Option<&str>,
        before: Option<&str>,
        strict: bool,
        now: u64,
    ) -> Result<TimeFence, QueryError> {
        let read = |text: Option<&str>| {
            text.map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| parse_time(t, now))
                .transpose()
        };
        Ok(TimeFence {
            after: read(after)?,
            before: read(before)?,
            strict,
        })
    }

    /// Sets the DNSDB time parameters this fence means (leaves the others).
    pub fn apply(&self, params: &mut Params) {
        if self.strict {
            params.time_first_after = self.after.or(params.time_first_after);
            params.time_last_before = self.before.or(params.time_last_before);
        } else {
            params.time_last_after = self.after.or(params.time_last_after);
            params.time_first_before = self.before.or(params.time_first_before);
        }
    }

    /// Whether the fence has an end.
    pub fn is_set(&self) -> bool {
        self.after.is_some() || self.before.is_some()
    }
}

/// A time as people write it: epoch seconds, `-SECONDS` (before `now`), a
/// date `YYYY-MM-DD` (its midnight, UTC), or a timestamp (RFC 3339, or
/// without an offset: UTC).
pub fn parse_time(text: &str, now: u64) -> Result<u64, QueryError> {
    let text = text.trim();
    let bad = || QueryError::BadTime(text.to_string());
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(relative_to(seconds, now));
    }
    let epoch = if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        timestamp.as_second()
    } else if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|_| bad())?
            .timestamp()
            .as_second()
    } else if let Ok(date) = text.parse::<jiff::civil::Date>() {
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|_| bad())?
            .timestamp()
            .as_second()
    } else {
        return Err(bad());
    };
    u64::try_from(epoch).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::entry;

    fn raw(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn params() {
        let params = parse_params(
            &raw(&[
                ("limit", "0"),
                ("aggr", "False"),
                ("time_last_after", "-100"),
                ("swclient", "x"),
            ]),
            1_000_000,
            1_000,
        )
        .unwrap();
        assert_eq!(params.limit, 1_000_000);
        assert_eq!(params.time_last_after, Some(900));
        assert_eq!(parse_params(&raw(&[]), 50, 0).unwrap().limit, 50);
        assert_eq!(
            parse_params(&raw(&[]), u64::MAX, 0).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            parse_params(&raw(&[("humantime", "maybe")]), 10, 0)
                .unwrap_err()
                .to_string(),
            "bad humantime \"maybe\""
        );
        assert!(matches!(
            parse_params(&raw(&[("max_count", "0")]), 10, 0),
            Err(QueryError::ZeroMaxCount)
        ));
        assert!(matches!(
            parse_params(&raw(&[("offset", "-1")]), 10, 0),
            Err(QueryError::BadParameter { name: "offset", .. })
        ));
    }

    #[test]
    fn fences_are_inclusive() {
        let record = entry("a.example", dnsrecall_core::Rtype::A, "192.0.2.1", 100, 200);
        let fenced = |params: Params| params.fences(&record);
        assert!(fenced(Params::default()));
        assert!(fenced(Params {
            time_first_after: Some(100),
            time_last_before: Some(200),
            ..Params::default()
        }));
        assert!(!fenced(Params {
            time_first_after: Some(101),
            ..Params::default()
        }));
        assert!(!fenced(Params {
            time_last_before: Some(199),
            ..Params::default()
        }));
    }

    #[test]
    fn strict_and_loose_fences() {
        let record = entry("a.example", dnsrecall_core::Rtype::A, "192.0.2.1", 100, 200);
        let passes = |after, before, strict| {
            let mut params = Params::default();
            TimeFence {
                after,
                before,
                strict,
            }
            .apply(&mut params);
            params.fences(&record)
        };
        // The window 150..=300 overlaps the sightings but does not hold them.
        assert!(passes(Some(150), Some(300), false));
        assert!(!passes(Some(150), Some(300), true));
        assert!(passes(Some(50), Some(300), true));
        assert!(!passes(Some(250), None, false));
        assert!(!passes(None, Some(50), false));
    }

    #[test]
    fn times_as_people_write_them() {
        assert_eq!(parse_time("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(parse_time("-60", 1000).unwrap(), 940);
        assert_eq!(parse_time("2023-11-14", 0).unwrap(), 1_699_920_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000
        );
        assert_eq!(parse_time("2023-11-14 22:13:20", 0).unwrap(), 1_700_000_000);
        assert!(matches!(
            parse_time("yesterday", 0),
            Err(QueryError::BadTime(_))
        ));
        assert!(matches!(
            parse_time("1960-01-01", 0),
            Err(QueryError::BadTime(_))
        ));
        let fence = TimeFence::parse(Some("2023-11-14"), Some(" "), true, 0).unwrap();
        assert_eq!(fence.after, Some(1_699_920_000));
        assert_eq!(fence.before, None);
    }

    proptest! {
        #[test]
        fn any_parameters_are_answered(
            pairs in proptest::collection::vec(
                (prop_oneof![
                    Just("limit"), Just("offset"), Just("aggr"), Just("humantime"),
                    Just("max_count"), Just("time_first_before"), Just("time_last_after"),
                    Just("other"),
                ], "\\PC{0,12}"),
                0..6,
            ),
            max in any::<u64>(),
            now in any::<u64>(),
        ) {
            let raw: HashMap<String, String> =
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if let Ok(params) = parse_params(&raw, max, now) {
                prop_assert!(params.limit <= max);
                prop_assert!(params.max_count != Some(0));
            }
        }

        #[test]
        fn any_time_is_answered(text in "\\PC{0,30}", now in any::<u64>()) {
            let _ = parse_time(&text, now);
        }

        #[test]
        fn epoch_seconds_read_back(seconds in 0i64..4_000_000_000) {
            prop_assert_eq!(parse_time(&seconds.to_string(), 0).unwrap(), seconds.unsigned_abs());
            let stamp = jiff::Timestamp::from_second(seconds).unwrap().to_string();
            prop_assert_eq!(parse_time(&stamp, 0).unwrap(), seconds.unsigned_abs());
        }
    }
}
