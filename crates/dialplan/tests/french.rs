//! French sentences about time, at fixed instants.

use jiff::civil::date;
use jiff::Timestamp;
use ld_dialplan::calendar::{Calendar, TimeRange};
use ld_dialplan::french::{
    closed_message, closed_message_fragments, closed_message_parts, minutes, time_of_day, weekly,
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn r(s: &str) -> TimeRange {
    TimeRange::parse(s).expect("range")
}

fn service() -> Calendar {
    let mut c = Calendar::new_paris();
    for d in 0..5 {
        c.weekly[d] = vec![r("18:00-22:00")];
    }
    c
}

#[test]
fn minutes_and_times() {
    assert_eq!(minutes(1), "une minute");
    assert_eq!(minutes(4), "4 minutes");
    assert_eq!(minutes(21), "vingt et une minutes");
    assert_eq!(minutes(11), "11 minutes");
    assert_eq!(time_of_day(18 * 60), "18 heures");
    assert_eq!(time_of_day(18 * 60 + 30), "18 heures 30");
    assert_eq!(time_of_day(18 * 60 + 5), "18 heures 5");
    assert_eq!(time_of_day(21 * 60), "vingt et une heures");
    assert_eq!(time_of_day(60), "une heure");
    assert_eq!(time_of_day(12 * 60), "midi");
    assert_eq!(time_of_day(0), "minuit");
    assert_eq!(time_of_day(24 * 60), "minuit");
    assert_eq!(time_of_day(9 * 60 + 1), "9 heures une");
}

#[test]
fn dates() {
    assert_eq!(ld_dialplan::french::date(date(2027, 5, 10)), "lundi 10 mai");
    assert_eq!(
        ld_dialplan::french::date(date(2026, 5, 1)),
        "vendredi premier mai"
    );
    assert_eq!(
        ld_dialplan::french::date(date(2026, 8, 21)),
        "vendredi vingt et un août"
    );
}

#[test]
fn weekly_hours_in_words() {
    assert_eq!(
        weekly(&service().weekly),
        "du lundi au vendredi de 18 heures à 22 heures"
    );
    let mut c = service();
    c.weekly[2] = vec![r("09:00-12:00"), r("14:00-17:30")];
    c.weekly[5] = vec![r("09:00-12:00")];
    assert_eq!(
        weekly(&c.weekly),
        "le lundi et le mardi de 18 heures à 22 heures, le mercredi de 9 heures à midi et de 14 heures à 17 heures 30, le jeudi et le vendredi de 18 heures à 22 heures et le samedi de 9 heures à midi"
    );
    let mut all = Calendar::new_paris();
    for d in 0..7 {
        all.weekly[d] = vec![r("08:00-24:00")];
    }
    assert_eq!(weekly(&all.weekly), "tous les jours de 8 heures à minuit");
}

const HOURS: &str = "Le service est ouvert du lundi au vendredi de 18 heures à 22 heures.";

#[test]
fn closed_message_reopening_later() {
    let c = service();
    // Friday 7 May 2027, 22:30 CEST: Saturday and Sunday closed, Monday 10 May.
    let at = ts("2027-05-07T20:30:00Z");
    assert_eq!(
        closed_message(&c, at),
        format!("{HOURS} Il rouvrira lundi 10 mai à 18 heures.")
    );
    assert_eq!(
        closed_message_parts(&c, at),
        vec![HOURS, "Il rouvrira lundi", "10", "mai", "à 18 heures."]
    );
    // Wednesday 5 May 2027, 23:00: Thursday 6 is Ascension.
    assert_eq!(
        closed_message(&c, ts("2027-05-05T21:00:00Z")),
        format!("{HOURS} Il rouvrira vendredi 7 mai à 18 heures.")
    );
}

#[test]
fn closed_message_today_and_tomorrow() {
    let c = service();
    // Monday 4 May 2026, 17:59 CEST.
    assert_eq!(
        closed_message(&c, ts("2026-05-04T15:59:00Z")),
        format!("{HOURS} Il rouvrira aujourd'hui à 18 heures.")
    );
    // Monday 4 May 2026, 22:00 CEST.
    assert_eq!(
        closed_message(&c, ts("2026-05-04T20:00:00Z")),
        format!("{HOURS} Il rouvrira demain à 18 heures.")
    );
    // Thursday 31 December 2026, 23:30 CET: Friday is 1 January, so Monday 4 January.
    assert_eq!(
        closed_message(&c, ts("2026-12-31T22:30:00Z")),
        format!("{HOURS} Il rouvrira lundi 4 janvier à 18 heures.")
    );
    // Open: only the hours.
    assert_eq!(closed_message(&c, ts("2026-05-04T17:00:00Z")), HOURS);
}

#[test]
fn every_fragment_is_known_in_advance() {
    let c = service();
    let known = closed_message_fragments(&c);
    // A year of closed instants, every 7 hours: each fragment was listed.
    let mut at = ts("2026-01-01T00:00:00Z");
    for _ in 0..(366 * 24 / 7) {
        for part in closed_message_parts(&c, at) {
            assert!(known.contains(&part), "{part:?} at {at} not listed");
        }
        at = at
            .checked_add(jiff::SignedDuration::from_hours(7))
            .expect("ts");
    }
    let never = Calendar::new_paris();
    assert_eq!(
        closed_message(&never, ts("2026-01-01T00:00:00Z")),
        "Le service est actuellement fermé."
    );
}
