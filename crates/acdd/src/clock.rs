//! The daemon's wall clock: the cores run on `Instant`s; records and
//! calendars need wall time. `--now` shifts the wall clock to a chosen start
//! (demos, tests of opening hours) while time still flows normally.

use std::time::Instant;

use jiff::{civil::Date, tz::TimeZone, Timestamp};

/// Maps the monotonic clock to wall time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_instant: Instant,
    base_wall: Timestamp,
}

impl Clock {
    /// `start`: the wall time "now" should read; `None` for the system clock.
    pub fn new(start: Option<Timestamp>) -> Clock {
        Clock {
            base_instant: Instant::now(),
            base_wall: start.unwrap_or_else(Timestamp::now),
        }
    }

    /// The wall time of an instant taken from the monotonic clock.
    pub fn wall(&self, at: Instant) -> Timestamp {
        let delta = match at.checked_duration_since(self.base_instant) {
            Some(d) => jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX),
            None => {
                let back = self.base_instant.duration_since(at);
                -jiff::SignedDuration::try_from(back).unwrap_or(jiff::SignedDuration::MAX)
            }
        };
        self.base_wall.checked_add(delta).unwrap_or(self.base_wall)
    }
}

/// The time zone of the service (French public services).
pub fn service_tz() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC)
}

/// An RFC 3339 instant, or a civil date/datetime read in Europe/Paris.
pub fn parse_instant(s: &str) -> Result<Timestamp, String> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned_datetime(service_tz())
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    if let Ok(d) = s.parse::<Date>() {
        return d
            .to_zoned_datetime(service_tz())
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "{s:?} is neither an RFC 3339 instant (2026-12-04T18:30:00+01:00) nor a date (2026-12-04)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn now_override_shifts_the_wall_clock_and_time_flows() {
        let start: Timestamp = "2026-05-10T16:00:00Z".parse().expect("ts");
        let clock = Clock::new(Some(start));
        let later = clock.base_instant + Duration::from_secs(90);
        assert_eq!(clock.wall(later).to_string(), "2026-05-10T16:01:30Z");
        assert_eq!(clock.wall(clock.base_instant), start);
    }

    #[test]
    fn instants_and_dates_parse_in_paris_time() {
        assert_eq!(
            parse_instant("2026-12-04T18:30:00+01:00")
                .expect("rfc3339")
                .to_string(),
            "2026-12-04T17:30:00Z"
        );
        // Winter: UTC+1; summer: UTC+2 (DST).
        assert_eq!(
            parse_instant("2026-12-04").expect("date").to_string(),
            "2026-12-03T23:00:00Z"
        );
        assert_eq!(
            parse_instant("2026-07-14").expect("date").to_string(),
            "2026-07-13T22:00:00Z"
        );
        assert!(parse_instant("yesterday").is_err());
    }
}
