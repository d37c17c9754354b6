//! The opening-hours calendar: French public holidays against the official dates,
//! exceptions, and DST changes in Europe/Paris.

use jiff::civil::{date, Date};
use jiff::Timestamp;
use ld_dialplan::calendar::{easter, french_holidays, Calendar, DateRange, Opening, TimeRange};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn r(s: &str) -> TimeRange {
    TimeRange::parse(s).expect("range")
}

/// 18h–22h Monday to Friday, Europe/Paris, French holidays.
fn service() -> Calendar {
    let mut c = Calendar::new_paris();
    for d in 0..5 {
        c.weekly[d] = vec![r("18:00-22:00")];
    }
    c
}

fn every_day(ranges: &[&str]) -> Calendar {
    let mut c = Calendar::new_paris();
    for d in 0..7 {
        c.weekly[d] = ranges.iter().map(|s| r(s)).collect();
    }
    c
}

#[test]
fn easter_sundays_are_the_official_ones() {
    let expected = [
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2028, date(2028, 4, 16)),
        (2029, date(2029, 4, 1)),
        (2030, date(2030, 4, 21)),
        // Extremes of the algorithm's range of dates: 22 March and 25 April.
        (2285, date(2285, 3, 22)),
        (2038, date(2038, 4, 25)),
    ];
    for (y, d) in expected {
        assert_eq!(easter(y), d, "{y}");
    }
}

#[test]
fn french_holidays_2026_to_2030() {
    // Official dates (service-public.fr): Easter Monday = Easter + 1, Ascension = Easter + 39,
    // Whit Monday = Easter + 50.
    let movable = [
        (2026, (4, 6), (5, 14), (5, 25)),
        (2027, (3, 29), (5, 6), (5, 17)),
        (2028, (4, 17), (5, 25), (6, 5)),
        (2029, (4, 2), (5, 10), (5, 21)),
        (2030, (4, 22), (5, 30), (6, 10)),
    ];
    for (y, easter_monday, ascension, whit_monday) in movable {
        let mut want: Vec<Date> = [
            (1, 1),
            easter_monday,
            (5, 1),
            (5, 8),
            ascension,
            whit_monday,
            (7, 14),
            (8, 15),
            (11, 1),
            (11, 11),
            (12, 25),
        ]
        .iter()
        .map(|&(m, d)| date(y, m, d))
        .collect();
        want.sort();
        let got: Vec<Date> = french_holidays(y, false)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(got, want, "{y}");
        assert_eq!(got.len(), 11, "{y}");
    }
    // Alsace-Moselle adds Good Friday and 26 December.
    let am: Vec<Date> = french_holidays(2026, true)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(am.len(), 13);
    assert!(am.contains(&date(2026, 4, 3)), "Good Friday 2026");
    assert!(am.contains(&date(2026, 12, 26)));
    let am2029: Vec<Date> = french_holidays(2029, true)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert!(am2029.contains(&date(2029, 3, 30)), "Good Friday 2029");
}

#[test]
fn weekly_hours_and_holidays_decide_openness() {
    let c = service();
    // Monday 4 May 2026 (CEST, UTC+2).
    assert!(c.is_open(ts("2026-05-04T17:00:00Z")), "Monday 19:00");
    assert!(c.is_open(ts("2026-05-04T16:00:00Z")), "Monday 18:00 sharp");
    assert!(!c.is_open(ts("2026-05-04T15:59:59Z")), "Monday 17:59:59");
    assert!(!c.is_open(ts("2026-05-04T20:00:00Z")), "Monday 22:00 sharp");
    assert!(!c.is_open(ts("2026-05-09T17:00:00Z")), "Saturday 19:00");
    // 14 July 2026 is a Tuesday; 25 May 2026 a Whit Monday.
    assert!(!c.is_open(ts("2026-07-14T17:00:00Z")), "14 July");
    assert!(c.is_open(ts("2026-07-13T17:00:00Z")), "13 July");
    assert!(!c.is_open(ts("2026-05-25T17:00:00Z")), "Whit Monday");
    // Winter (CET, UTC+1): 19:00 local is 18:00 UTC.
    assert!(c.is_open(ts("2026-01-05T18:00:00Z")));
    assert!(!c.is_open(ts("2026-01-05T16:59:00Z")));
}

#[test]
fn exceptional_closures_and_openings() {
    let mut c = service();
    c.closed = vec![
        DateRange::parse("2026-12-24").expect("date"),
        DateRange::parse("2026-12-30..2027-01-02").expect("range"),
    ];
    c.open = vec![
        // A holiday opened with the weekly hours of its day (a Tuesday).
        Opening {
            dates: DateRange::parse("2026-07-14").expect("date"),
            hours: None,
        },
        // A Saturday with its own hours.
        Opening {
            dates: DateRange::parse("2026-05-16").expect("date"),
            hours: Some(vec![r("10:00-12:00")]),
        },
    ];
    assert!(!c.is_open(ts("2026-12-24T18:00:00Z")), "closed 24 Dec");
    assert!(c.is_open(ts("2026-12-23T18:00:00Z")), "23 Dec open");
    assert!(!c.is_open(ts("2026-12-30T18:00:00Z")));
    assert!(!c.is_open(ts("2027-01-01T18:00:00Z")));
    assert!(c.is_open(ts("2027-01-04T18:00:00Z")), "Monday after");
    assert!(c.is_open(ts("2026-07-14T17:00:00Z")), "14 July opened");
    assert!(c.is_open(ts("2026-05-16T08:30:00Z")), "Saturday 10:30");
    assert!(!c.is_open(ts("2026-05-16T17:00:00Z")), "Saturday 19:00");
    // Next opening after the closure on Thursday 24 December: Friday 25 is Christmas,
    // the weekend follows: Monday 28 at 18:00.
    let next = c.next_opening(ts("2026-12-24T12:00:00Z")).expect("opens");
    assert_eq!(next.datetime(), date(2026, 12, 28).at(18, 0, 0, 0));
}

#[test]
fn next_opening() {
    let c = service();
    // Open now: now.
    let at = ts("2026-05-04T17:00:00Z");
    assert_eq!(c.next_opening(at).expect("open").timestamp(), at);
    // Monday 17:00 local: today 18:00.
    let n = c.next_opening(ts("2026-05-04T15:00:00Z")).expect("opens");
    assert_eq!(n.timestamp(), ts("2026-05-04T16:00:00Z"));
    // Friday 22:30 local: Monday 18:00.
    let n = c.next_opening(ts("2026-05-08T20:30:00Z")).expect("opens");
    assert_eq!(n.datetime(), date(2026, 5, 11).at(18, 0, 0, 0));
    // Wednesday 5 May 2027 23:00: Thursday is Ascension, so Friday 7.
    let n = c.next_opening(ts("2027-05-05T21:00:00Z")).expect("opens");
    assert_eq!(n.datetime(), date(2027, 5, 7).at(18, 0, 0, 0));
    // Never open.
    assert!(Calendar::new_paris()
        .next_opening(ts("2026-05-04T15:00:00Z"))
        .is_none());
}

#[test]
fn dst_spring_forward_keeps_local_hours() {
    // Sunday 29 March 2026: 02:00 CET -> 03:00 CEST.
    let c = every_day(&["18:00-22:00"]);
    // Saturday 28 (CET, UTC+1).
    assert!(!c.is_open(ts("2026-03-28T16:59:59Z")));
    assert!(c.is_open(ts("2026-03-28T17:00:00Z")));
    assert!(c.is_open(ts("2026-03-28T20:59:59Z")));
    assert!(!c.is_open(ts("2026-03-28T21:00:00Z")));
    // Sunday 29 (CEST, UTC+2).
    assert!(!c.is_open(ts("2026-03-29T15:59:59Z")));
    assert!(c.is_open(ts("2026-03-29T16:00:00Z")));
    assert!(c.is_open(ts("2026-03-29T19:59:59Z")));
    assert!(!c.is_open(ts("2026-03-29T20:00:00Z")));
    let n = c.next_opening(ts("2026-03-28T22:00:00Z")).expect("opens");
    assert_eq!(n.timestamp(), ts("2026-03-29T16:00:00Z"));
    assert_eq!(n.datetime(), date(2026, 3, 29).at(18, 0, 0, 0));
}

#[test]
fn dst_fall_back_keeps_local_hours() {
    // Sunday 25 October 2026: 03:00 CEST -> 02:00 CET.
    let c = every_day(&["18:00-22:00"]);
    assert!(c.is_open(ts("2026-10-24T16:00:00Z")), "Saturday 18:00 CEST");
    assert!(!c.is_open(ts("2026-10-24T15:59:59Z")));
    assert!(!c.is_open(ts("2026-10-25T16:00:00Z")), "Sunday 17:00 CET");
    assert!(c.is_open(ts("2026-10-25T17:00:00Z")), "Sunday 18:00 CET");
    assert!(!c.is_open(ts("2026-10-25T21:00:00Z")), "Sunday 22:00 CET");
    let n = c.next_opening(ts("2026-10-25T06:00:00Z")).expect("opens");
    assert_eq!(n.timestamp(), ts("2026-10-25T17:00:00Z"));
}

#[test]
fn ranges_across_the_dst_gap_do_not_panic() {
    // 01:00-04:00 spans the missing hour; 02:15-02:45 lies wholly inside it.
    let c = every_day(&["01:00-04:00"]);
    assert!(c.is_open(ts("2026-03-29T00:59:59Z")), "01:59:59 CET");
    assert!(c.is_open(ts("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(!c.is_open(ts("2026-03-29T02:00:00Z")), "04:00 CEST");
    let c = every_day(&["02:15-02:45"]);
    for minute in 0..240 {
        let at = ts("2026-03-28T23:00:00Z")
            .checked_add(jiff::SignedDuration::from_mins(minute))
            .expect("ts");
        assert!(!c.is_open(at), "{at} open inside the gap");
    }
    // That Sunday never opens: the next opening is Monday 02:15.
    let n = c.next_opening(ts("2026-03-28T23:00:00Z")).expect("opens");
    assert_eq!(n.datetime(), date(2026, 3, 30).at(2, 15, 0, 0));
    // A range starting in the gap opens when the clocks jump (03:00 CEST = 01:00 UTC).
    let c = every_day(&["02:30-05:00"]);
    let n = c.next_opening(ts("2026-03-28T23:00:00Z")).expect("opens");
    assert_eq!(n.timestamp(), ts("2026-03-29T01:00:00Z"));
    assert!(c.is_open(n.timestamp()));
    // In the repeated hour of October, a range opens at the first occurrence.
    let c = every_day(&["02:30-05:00"]);
    let n = c.next_opening(ts("2026-10-24T23:00:00Z")).expect("opens");
    assert_eq!(n.timestamp(), ts("2026-10-25T00:30:00Z"), "02:30 CEST");
}
