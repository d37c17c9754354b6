//! French sentences about time, written so that espeak-ng (French voice) reads them right.
//!
//! espeak reads plain digits well ("18 heures 30", "10 mai") but gets the gender wrong on
//! numbers ending in one ("21 heures" comes out "vingt et un heures") and reads "1er" as
//! "un e r": such numbers are written in words ("vingt et une heures", "premier").
//!
//! The closed message is built from a few fixed fragments ([`closed_message_parts`]) so that
//! every fragment a calendar can produce is known in advance ([`closed_message_fragments`])
//! and can be rendered once: the daemon then never needs espeak at run time.

use jiff::civil::Date;
use jiff::Timestamp;

use crate::calendar::{Calendar, TimeRange, WEEKDAYS_FR};

const UNITS: [&str; 20] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
    "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
];
const TENS: [&str; 7] = [
    "",
    "",
    "vingt",
    "trente",
    "quarante",
    "cinquante",
    "soixante",
];

/// A number in words (1990 spelling reform: hyphens everywhere), for 0..=999_999.
/// `feminine` gives "une" for a final one ("vingt et une minutes").
pub fn number_words(n: u32, feminine: bool) -> String {
    let w = words(n);
    if feminine && (w == "un" || w.ends_with("-et-un")) {
        format!("{}e", w)
    } else {
        w
    }
}

fn words(n: u32) -> String {
    match n {
        0..=19 => UNITS[n as usize].to_owned(),
        20..=69 => {
            let (t, u) = (n / 10, n % 10);
            match u {
                0 => TENS[t as usize].to_owned(),
                1 => format!("{}-et-un", TENS[t as usize]),
                _ => format!("{}-{}", TENS[t as usize], UNITS[u as usize]),
            }
        }
        70..=79 => {
            if n == 71 {
                "soixante-et-onze".to_owned()
            } else {
                format!("soixante-{}", UNITS[(n - 60) as usize])
            }
        }
        80 => "quatre-vingts".to_owned(),
        81..=99 => format!("quatre-vingt-{}", words(n - 80)),
        100..=999 => {
            let (h, r) = (n / 100, n % 100);
            let head = if h == 1 {
                "cent".to_owned()
            } else if r == 0 {
                format!("{}-cents", UNITS[h as usize])
            } else {
                format!("{}-cent", UNITS[h as usize])
            };
            if r == 0 {
                head
            } else {
                format!("{head}-{}", words(r))
            }
        }
        _ => {
            let (th, r) = (n.min(999_999) / 1000, n % 1000);
            let head = if th == 1 {
                "mille".to_owned()
            } else {
                // "quatre-vingt-mille": no plural s before mille.
                format!("{}-mille", words(th).trim_end_matches('s'))
            };
            if r == 0 {
                head
            } else {
                format!("{head}-{}", words(r))
            }
        }
    }
}

/// A count in the form espeak says right: digits, except a final one in words.
fn count(n: u32, feminine: bool) -> String {
    if n % 10 == 1 && n % 100 != 11 && n < 100 {
        number_words(n, feminine).replace("-et-", " et ")
    } else {
        n.to_string()
    }
}

/// "une minute", "4 minutes", "21 minutes" → "vingt et une minutes".
pub fn minutes(n: u32) -> String {
    let unit = if n > 1 { "minutes" } else { "minute" };
    format!("{} {unit}", count(n, true))
}

/// A time of day: "18 heures", "18 heures 30", "une heure", "21 heures" → "vingt et une
/// heures", "midi", "minuit". `minutes_of_day` may be 1440 (end of day: "minuit").
pub fn time_of_day(minutes_of_day: u16) -> String {
    let (h, m) = (
        u32::from(minutes_of_day / 60) % 24,
        u32::from(minutes_of_day % 60),
    );
    let head = match h {
        0 => "minuit".to_owned(),
        12 => "midi".to_owned(),
        1 => "une heure".to_owned(),
        _ => format!("{} heures", count(h, true)),
    };
    if m == 0 {
        head
    } else {
        format!("{head} {}", count(m, true))
    }
}

/// French month names, January first.
pub const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// "premier", "2" … "31": the day of the month as espeak should read it.
pub fn day_of_month(day: i8) -> String {
    if day == 1 {
        "premier".to_owned()
    } else {
        count(day as u32, false)
    }
}

/// "lundi 10 mai", "vendredi premier mai".
pub fn date(d: Date) -> String {
    format!(
        "{} {} {}",
        WEEKDAYS_FR[d.weekday().to_monday_zero_offset() as usize],
        day_of_month(d.day()),
        MONTHS_FR[(d.month() - 1) as usize]
    )
}

/// "de 18 heures à 22 heures", several ranges joined by "et".
pub fn ranges(rs: &[TimeRange]) -> String {
    let parts: Vec<String> = rs
        .iter()
        .map(|r| format!("de {} à {}", time_of_day(r.start), time_of_day(r.end)))
        .collect();
    join_et(&parts)
}

fn join_et(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} et {last}", init.join(", ")),
    }
}

/// The weekly hours in words: "du lundi au vendredi de 18 heures à 22 heures",
/// "le samedi de 9 heures à midi", "tous les jours de …". Empty when never open.
pub fn weekly(weekly: &[Vec<TimeRange>; 7]) -> String {
    if weekly.iter().all(|d| d == &weekly[0]) {
        return if weekly[0].is_empty() {
            String::new()
        } else {
            format!("tous les jours {}", ranges(&weekly[0]))
        };
    }
    // Runs of consecutive days (Monday to Sunday) with the same hours.
    let mut groups: Vec<String> = Vec::new();
    let mut i = 0;
    while i < 7 {
        let mut j = i;
        while j + 1 < 7 && weekly[j + 1] == weekly[i] {
            j += 1;
        }
        if !weekly[i].is_empty() {
            let days = match j - i {
                0 => format!("le {}", WEEKDAYS_FR[i]),
                1 => format!("le {} et le {}", WEEKDAYS_FR[i], WEEKDAYS_FR[j]),
                _ => format!("du {} au {}", WEEKDAYS_FR[i], WEEKDAYS_FR[j]),
            };
            groups.push(format!("{days} {}", ranges(&weekly[i])));
        }
        i = j + 1;
    }
    join_et(&groups)
}

/// The first sentence of the closed message: "Le service est ouvert du lundi au vendredi
/// de 18 heures à 22 heures."
pub fn hours_sentence(cal: &Calendar) -> String {
    let w = weekly(&cal.weekly);
    if w.is_empty() {
        "Le service est actuellement fermé.".to_owned()
    } else {
        format!("Le service est ouvert {w}.")
    }
}

const REOPENS: &str = "Il rouvrira";

/// The closed message as fragments to play in order (each rendered once, see the module
/// doc): their join with spaces is [`closed_message`].
///
/// `["Le service est ouvert du lundi au vendredi de 18 heures à 22 heures.",
///   "Il rouvrira lundi", "10", "mai", "à 18 heures."]`, or with
/// `"Il rouvrira aujourd'hui"` / `"Il rouvrira demain"` when it reopens today or tomorrow.
///
/// Meant for closed hours: when the service is open at `at`, only the hours are said.
pub fn closed_message_parts(cal: &Calendar, at: Timestamp) -> Vec<String> {
    let mut parts = vec![hours_sentence(cal)];
    if cal.is_open(at) {
        return parts;
    }
    let Some(next) = cal.next_opening(at) else {
        return parts;
    };
    let today = at.to_zoned_datetime(cal.tz.clone()).date();
    let day = next.date();
    let t = next.time();
    let at_time = format!(
        "à {}.",
        time_of_day(t.hour() as u16 * 60 + t.minute() as u16)
    );
    if day == today {
        parts.push(format!("{REOPENS} aujourd'hui"));
    } else if today.tomorrow().ok() == Some(day) {
        parts.push(format!("{REOPENS} demain"));
    } else {
        parts.push(format!(
            "{REOPENS} {}",
            WEEKDAYS_FR[day.weekday().to_monday_zero_offset() as usize]
        ));
        parts.push(day_of_month(day.day()));
        parts.push(MONTHS_FR[(day.month() - 1) as usize].to_owned());
    }
    parts.push(at_time);
    parts
}

/// The closed message as one text: "Le service est ouvert du lundi au vendredi de 18 heures
/// à 22 heures. Il rouvrira lundi 10 mai à 18 heures."
pub fn closed_message(cal: &Calendar, at: Timestamp) -> String {
    closed_message_parts(cal, at).join(" ")
}

/// Every fragment [`closed_message_parts`] can produce for this calendar, so that all of
/// them can be rendered ahead of time.
pub fn closed_message_fragments(cal: &Calendar) -> Vec<String> {
    let mut out = vec![
        hours_sentence(cal),
        format!("{REOPENS} aujourd'hui"),
        format!("{REOPENS} demain"),
    ];
    out.extend(WEEKDAYS_FR.iter().map(|d| format!("{REOPENS} {d}")));
    out.extend((1..=31).map(day_of_month));
    out.extend(MONTHS_FR.iter().map(|m| (*m).to_owned()));
    // Openings start at a range start, or at 03:00 when a range starts in the March gap.
    let mut starts: Vec<u16> = cal
        .weekly
        .iter()
        .flatten()
        .chain(cal.open.iter().filter_map(|o| o.hours.as_ref()).flatten())
        .map(|r| r.start)
        .collect();
    if starts.iter().any(|&s| (120..180).contains(&s)) {
        starts.push(180);
    }
    starts.sort();
    starts.dedup();
    out.extend(starts.into_iter().map(|s| format!("à {}.", time_of_day(s))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_words() {
        let cases = [
            (0, "zéro"),
            (1, "un"),
            (16, "seize"),
            (21, "vingt-et-un"),
            (30, "trente"),
            (71, "soixante-et-onze"),
            (77, "soixante-dix-sept"),
            (80, "quatre-vingts"),
            (81, "quatre-vingt-un"),
            (91, "quatre-vingt-onze"),
            (100, "cent"),
            (200, "deux-cents"),
            (201, "deux-cent-un"),
            (1000, "mille"),
            (2026, "deux-mille-vingt-six"),
            (80_000, "quatre-vingt-mille"),
        ];
        for (n, w) in cases {
            assert_eq!(number_words(n, false), w, "{n}");
        }
        assert_eq!(number_words(1, true), "une");
        assert_eq!(number_words(41, true), "quarante-et-une");
    }
}
