//! The call detail record written for every call, whatever its end.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a call ended, from the service's point of view.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered (by the IVR or an agent).
    Answered,
    /// The caller left before the call was answered.
    Abandoned,
    /// We sent a final non-2xx on purpose (closed, blocklisted, no entry…).
    Rejected,
    /// An error ended it (media failure, 488, internal error).
    Failed,
    /// Ended by the daemon shutting down.
    Shutdown,
    /// The caller asked to be called back (keeping their place) and hung up.
    CallbackPromised,
    /// Sent to another number (transfer, overflow to a partner).
    Transferred,
}

/// Who hung up.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HangupBy {
    Caller,
    System,
    Agent,
    /// The number the call was transferred to.
    Partner,
    Unknown,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored (and serde) name.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}

text_enum!(Outcome {
    Answered => "answered",
    Abandoned => "abandoned",
    Rejected => "rejected",
    Failed => "failed",
    Shutdown => "shutdown",
    CallbackPromised => "callback_promised",
    Transferred => "transferred",
});

text_enum!(HangupBy {
    Caller => "caller",
    System => "system",
    Agent => "agent",
    Partner => "partner",
    Unknown => "unknown",
});

/// Instants as fixed-width RFC 3339 UTC with milliseconds
/// ("2026-12-04T17:02:11.200Z"): the exports sort as text, and readers
/// never see a varying number of digits.
pub mod rfc3339_ms {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(t: &Timestamp) -> String {
        t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }

    /// The same for optional instants.
    pub mod option {
        use jiff::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            let text = Option::<String>::deserialize(d)?;
            text.map(|t| t.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// One call, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// The SIP Call-ID of the caller's leg: the key, so rewriting a record replaces it.
    pub call_id: String,
    pub caller: String,
    pub called: String,
    #[serde(with = "rfc3339_ms")]
    pub arrived_at: Timestamp,
    #[serde(with = "rfc3339_ms::option")]
    pub early_media_at: Option<Timestamp>,
    #[serde(with = "rfc3339_ms::option")]
    pub answered_at: Option<Timestamp>,
    #[serde(with = "rfc3339_ms")]
    pub ended_at: Timestamp,
    pub outcome: Outcome,
    pub hangup_by: HangupBy,
    /// SIP status of our final response when the call was not answered.
    pub final_status: Option<u16>,
    /// Arrival to answer, or to the end when never answered.
    pub wait_seconds: Option<f64>,
    /// Answer to end.
    pub talk_seconds: Option<f64>,
    /// The ACD queue the call went to, and when.
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default, with = "rfc3339_ms::option")]
    pub queued_at: Option<Timestamp>,
    /// The agent who answered, and when the caller was put through.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default, with = "rfc3339_ms::option")]
    pub connected_at: Option<Timestamp>,
    /// The dialplan nodes the call went through, in order.
    #[serde(default)]
    pub ivr_path: Vec<String>,
    /// What the dialplan recorded on the call (e.g. `consent`).
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
}

/// One step of the queue journal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JournalEntry {
    #[serde(with = "rfc3339_ms")]
    pub at: Timestamp,
    /// snake_case name: `arrived`, `offered`, `offer_ended`, `answered`, `abandoned`,
    /// `call_ended`, `agent_state`, `callback_promised`, `callback_placed`, …
    pub event: String,
    /// The SIP Call-ID of the caller's leg, when the step is about a call.
    pub call_id: Option<String>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    /// The rest of the step (offer result, position, wait…).
    pub detail: serde_json::Value,
}

impl CallRecord {
    /// Fills `wait_seconds` and `talk_seconds` from the timestamps, so every producer
    /// derives them the same way.
    pub fn with_derived_durations(mut self) -> Self {
        let waited_until = self.answered_at.unwrap_or(self.ended_at);
        self.wait_seconds = Some(
            waited_until
                .duration_since(self.arrived_at)
                .as_secs_f64()
                .max(0.0),
        );
        self.talk_seconds = self
            .answered_at
            .map(|a| self.ended_at.duration_since(a).as_secs_f64().max(0.0));
        self
    }
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn instants_are_fixed_width_and_round_trip() {
        let t: jiff::Timestamp = "2026-12-04T17:02:11.2Z".parse().expect("ts");
        assert_eq!(super::rfc3339_ms::format(&t), "2026-12-04T17:02:11.200Z");
        let t: jiff::Timestamp = "2026-12-04T17:02:11Z".parse().expect("ts");
        assert_eq!(super::rfc3339_ms::format(&t), "2026-12-04T17:02:11.000Z");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_durations() {
        let t = |ms| Timestamp::from_millisecond(ms).expect("valid");
        let rec = CallRecord {
            call_id: "c".into(),
            caller: "a".into(),
            called: "b".into(),
            arrived_at: t(1_000),
            early_media_at: None,
            answered_at: Some(t(31_500)),
            ended_at: t(91_500),
            outcome: Outcome::Answered,
            hangup_by: HangupBy::Caller,
            final_status: None,
            wait_seconds: None,
            talk_seconds: None,
            queue: None,
            queued_at: None,
            agent: None,
            connected_at: None,
            ivr_path: Vec::new(),
            variables: Default::default(),
        }
        .with_derived_durations();
        assert_eq!(rec.wait_seconds, Some(30.5));
        assert_eq!(rec.talk_seconds, Some(60.0));
        let abandoned = CallRecord {
            answered_at: None,
            ..rec
        }
        .with_derived_durations();
        assert_eq!(abandoned.wait_seconds, Some(90.5));
        assert_eq!(abandoned.talk_seconds, None);
    }

    #[test]
    fn serde_names_match_stored_names() {
        for o in [
            Outcome::Answered,
            Outcome::Abandoned,
            Outcome::Rejected,
            Outcome::Failed,
            Outcome::Shutdown,
        ] {
            let json = serde_json::to_string(&o).expect("serialize");
            assert_eq!(json, format!("\"{}\"", o.as_str()));
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
        }
        for h in [
            HangupBy::Caller,
            HangupBy::System,
            HangupBy::Agent,
            HangupBy::Unknown,
        ] {
            let json = serde_json::to_string(&h).expect("serialize");
            assert_eq!(json, format!("\"{}\"", h.as_str()));
            assert_eq!(HangupBy::from_name(h.as_str()), Some(h));
        }
        assert_eq!(Outcome::from_name("Answered"), None);
    }
}
