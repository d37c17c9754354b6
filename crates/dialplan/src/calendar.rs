//! Opening hours: a weekly timetable in a time zone, French public holidays computed from
//! Easter, and exceptional closures and openings by date. Pure: the instant is a parameter.
//!
//! Hours are civil (wall-clock) times of the calendar's zone, so "18:00-22:00" is 18h–22h
//! local on both sides of a DST change. A day's hours are decided in this order: an
//! exceptional opening, else an exceptional closure (closed all day), else a public holiday
//! (closed all day), else the weekly hours of its weekday.

use jiff::civil::{Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

/// A range of civil time in one day, in minutes since midnight: `start < end <= 1440`
/// (`24:00` is written for "until midnight"). Open on `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRange {
    pub start: u16,
    pub end: u16,
}

impl TimeRange {
    /// `"18:00-22:00"`, `"9:30-12:00"`, `"20:00-24:00"`. A range may not cross midnight:
    /// split it over two days.
    pub fn parse(text: &str) -> Result<TimeRange, String> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("expected \"HH:MM-HH:MM\", found {text:?}"))?;
        let start = parse_hhmm(a.trim())?;
        let end = parse_hhmm(b.trim())?;
        if start >= 1440 {
            return Err("a range cannot start at 24:00".into());
        }
        if end <= start {
            return Err(format!(
                "{text:?} ends before it starts: a range cannot cross midnight, split it over two days"
            ));
        }
        Ok(TimeRange { start, end })
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn contains_seconds(&self, secs_of_day: u32) -> bool {
        u32::from(self.start) * 60 <= secs_of_day && secs_of_day < u32::from(self.end) * 60
    }

    /// The start as a civil time.
    pub fn start_time(&self) -> Time {
        minutes_to_time(self.start)
    }
}

fn minutes_to_time(m: u16) -> Time {
    // `start < 1440` always holds for starts; ends of 24:00 never become a Time.
    let m = m.min(1439);
    Time::constant((m / 60) as i8, (m % 60) as i8, 0, 0)
}

fn parse_hhmm(s: &str) -> Result<u16, String> {
    let bad = || format!("bad time {s:?}: expected HH:MM between 00:00 and 24:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !digits(h) || !digits(m) {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A date or an inclusive range of dates: `"2026-12-24"`, `"2026-12-31..2027-01-02"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub first: Date,
    pub last: Date,
}

impl DateRange {
    pub fn parse(text: &str) -> Result<DateRange, String> {
        let date = |s: &str| -> Result<Date, String> {
            let s = s.trim();
            if s.len() != 10 {
                return Err(format!("bad date {s:?}: expected YYYY-MM-DD"));
            }
            s.parse::<Date>()
                .map_err(|_| format!("bad date {s:?}: expected YYYY-MM-DD"))
        };
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => {
                let d = date(text)?;
                (d, d)
            }
        };
        if last < first {
            return Err(format!("{text:?}: the range ends before it starts"));
        }
        Ok(DateRange { first, last })
    }

    pub fn contains(&self, d: Date) -> bool {
        self.first <= d && d <= self.last
    }
}

/// An exceptional opening: on these dates, `hours` (or, when `None`, the weekly hours of
/// the day) apply even on a holiday or a closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    pub dates: DateRange,
    pub hours: Option<Vec<TimeRange>>,
}

/// Opening hours of a service.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub tz: TimeZone,
    /// Hours per weekday, Monday first (index = `Weekday::to_monday_zero_offset`), sorted
    /// and non-overlapping.
    pub weekly: [Vec<TimeRange>; 7],
    pub closed: Vec<DateRange>,
    pub open: Vec<Opening>,
    /// Adds Good Friday and 26 December (Alsace and Moselle, Code du travail L3134-13).
    pub alsace_moselle: bool,
}

/// How far [`Calendar::next_opening`] looks ahead: a calendar with no opening in two years
/// is closed for good.
const LOOKAHEAD_DAYS: i32 = 2 * 366;

impl Calendar {
    /// A calendar in Europe/Paris with no hours at all (always closed).
    pub fn new_paris() -> Calendar {
        Calendar {
            tz: paris(),
            weekly: Default::default(),
            closed: Vec::new(),
            open: Vec::new(),
            alsace_moselle: false,
        }
    }

    /// The hours of one civil date, after holidays and exceptions.
    pub fn hours_on(&self, d: Date) -> Vec<TimeRange> {
        let weekly = &self.weekly[d.weekday().to_monday_zero_offset() as usize];
        if let Some(o) = self.open.iter().find(|o| o.dates.contains(d)) {
            return o.hours.clone().unwrap_or_else(|| weekly.clone());
        }
        if self.closed.iter().any(|c| c.contains(d)) || self.holiday(d).is_some() {
            return Vec::new();
        }
        weekly.clone()
    }

    /// The public holiday on `d`, if any, by its French name.
    pub fn holiday(&self, d: Date) -> Option<&'static str> {
        french_holiday(d, self.alsace_moselle)
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        let z = at.to_zoned_datetime(self.tz.clone());
        let secs = seconds_of_day(z.time());
        self.hours_on(z.date())
            .iter()
            .any(|r| r.contains_seconds(secs))
    }

    /// The earliest instant at or after `at` when the service is open: `at` itself when it
    /// is open now. `None` when it never opens within two years.
    pub fn next_opening(&self, at: Timestamp) -> Option<ZonedDateTime> {
        let now = at.to_zoned_datetime(self.tz.clone());
        let today = now.date();
        let secs = seconds_of_day(now.time());
        for offset in 0..=LOOKAHEAD_DAYS {
            let day = today.checked_add(jiff::Span::new().days(offset)).ok()?;
            let mut hours = self.hours_on(day);
            hours.sort();
            for r in hours {
                if offset == 0 {
                    if r.contains_seconds(secs) {
                        return Some(now);
                    }
                    if u32::from(r.start) * 60 < secs {
                        continue;
                    }
                }
                let start = self.first_instant_at_or_after(day.to_datetime(r.start_time()));
                // A range wholly inside a DST gap never opens.
                match start {
                    Some(ts) if ts >= at && self.is_open(ts) => {
                        return Some(ts.to_zoned_datetime(self.tz.clone()))
                    }
                    _ => continue,
                }
            }
        }
        None
    }

    /// The first instant whose local time is at or after `dt` on that day: `dt` itself,
    /// or, when `dt` falls in a DST gap (02:30 on the last Sunday of March), the instant
    /// the clocks jump (03:00), which is the first open instant of such a range.
    fn first_instant_at_or_after(&self, dt: jiff::civil::DateTime) -> Option<Timestamp> {
        let amb = self.tz.to_ambiguous_timestamp(dt);
        match amb.offset() {
            AmbiguousOffset::Gap { .. } => {
                let before_gap = amb.earlier().ok()?;
                let transition = self.tz.following(before_gap).next()?;
                Some(transition.timestamp())
            }
            // In a fold (an hour repeated in October) the first occurrence is the opening.
            _ => amb.earlier().ok(),
        }
    }
}

fn seconds_of_day(t: Time) -> u32 {
    t.hour() as u32 * 3600 + t.minute() as u32 * 60 + t.second() as u32
}

/// The Europe/Paris zone (bundled tzdb, so it never depends on the host).
pub fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC)
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
pub fn easter(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::constant(year, month as i8, day as i8)
}

/// French public holidays (Code du travail L3133-1), plus Good Friday and 26 December in
/// Alsace-Moselle.
pub fn french_holiday(d: Date, alsace_moselle: bool) -> Option<&'static str> {
    let fixed = match (d.month(), d.day()) {
        (1, 1) => Some("jour de l'an"),
        (5, 1) => Some("fête du travail"),
        (5, 8) => Some("victoire 1945"),
        (7, 14) => Some("fête nationale"),
        (8, 15) => Some("assomption"),
        (11, 1) => Some("toussaint"),
        (11, 11) => Some("armistice 1918"),
        (12, 25) => Some("noël"),
        (12, 26) if alsace_moselle => Some("saint-étienne"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let easter = easter(d.year());
    let movable = [
        (1, "lundi de Pâques"),
        (39, "Ascension"),
        (50, "lundi de Pentecôte"),
    ];
    let good_friday = [(-2, "vendredi saint")];
    let extra: &[(i64, &str)] = if alsace_moselle { &good_friday } else { &[] };
    movable
        .iter()
        .chain(extra)
        .find(|(off, _)| easter.checked_add(jiff::Span::new().days(*off)).ok() == Some(d))
        .map(|(_, name)| *name)
}

/// The French public holidays of a year, in date order.
pub fn french_holidays(year: i16, alsace_moselle: bool) -> Vec<(Date, &'static str)> {
    let mut out = Vec::new();
    let mut d = Date::constant(year, 1, 1);
    while d.year() == year {
        if let Some(name) = french_holiday(d, alsace_moselle) {
            out.push((d, name));
        }
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    out
}

/// Day names as written in French, Monday first.
pub const WEEKDAYS_FR: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

/// The schema's weekday keys, Monday first.
pub const WEEKDAYS_EN: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_parse() {
        assert_eq!(
            TimeRange::parse("18:00-22:00"),
            Ok(TimeRange {
                start: 1080,
                end: 1320
            })
        );
        assert_eq!(TimeRange::parse("9:30-24:00").map(|r| r.end), Ok(1440));
        for bad in [
            "18-22",
            "22:00-18:00",
            "18:00-18:00",
            "25:00-26:00",
            "18:60-19:00",
            "x",
            "24:00-24:00",
            "+1:00-2:00",
        ] {
            assert!(TimeRange::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn date_ranges_parse() {
        let r = DateRange::parse("2026-12-31..2027-01-02").expect("range");
        assert!(r.contains(Date::constant(2027, 1, 1)));
        assert!(!r.contains(Date::constant(2027, 1, 3)));
        assert!(DateRange::parse("2027-01-02..2026-12-31").is_err());
        assert!(DateRange::parse("2026-02-30").is_err());
        assert!(DateRange::parse("26-1-1").is_err());
    }
}
