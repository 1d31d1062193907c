//! The run's timeline: what happened to it and when, as typed events (report.json `timeline`).
//!
//! Live control (pause, resume, rate, stop), rules (abort, stop_when), signals (interrupt) and
//! scheduled actions each have their own variant of [`Kind`]. Exporters draw and list events
//! from these fields ([`Event::label`], [`Kind::name`]); `detail` is the sentence for people and
//! is never parsed.

use serde::{Deserialize, Serialize};

/// One entry of report.json's `timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the run started.
    pub t: f64,
    #[serde(flatten)]
    pub kind: Kind,
    /// What happened, in a sentence (`factor 0.5 of the plan (http)`).
    pub detail: String,
}

/// What the event was; report.json's `event` names the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Kind {
    /// Live control: new arrivals paused.
    Pause {
        #[serde(default)]
        source: String,
    },
    /// Live control: arrivals resumed.
    Resume {
        #[serde(default)]
        source: String,
    },
    /// Live control: the rate changed, to a factor of the plan or to a set value.
    Rate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<f64>,
        #[serde(default)]
        source: String,
    },
    /// Live control: the run was stopped.
    Stop {
        #[serde(default)]
        source: String,
    },
    /// An abort rule held: the run stops, status aborted.
    Abort {
        #[serde(default)]
        rule: String,
    },
    /// A capacity drill's stop_when held: the run ends.
    StopWhen {
        #[serde(default)]
        rule: String,
    },
    /// Ctrl-C or SIGTERM.
    Interrupt {},
    /// A scheduled action (`actions:`) ran.
    Action(ActionEvent),
}

/// What a scheduled action did: report.json `timeline[]` entries with `event: action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub name: String,
    /// The kind: `http`, `run`, `steer`.
    pub action: String,
    /// `at sale+30s`, `when p99 > 500ms for 10s`.
    pub trigger: String,
    /// The planned instant, seconds from the start (`at`; for `when`, the end of the second in
    /// which the rule held). The event's `t` is when it actually began.
    pub planned_t: f64,
    /// What it did: `POST http://127.0.0.1:9000/admin/fail?for=10s`, `run ./kill.sh shop-2`.
    pub did: String,
    /// `status 200`, `exit 0`, `timed out after 10s`.
    pub result: String,
    pub ok: bool,
    /// How long it took, seconds.
    pub duration_s: f64,
}

impl Kind {
    /// report.json's `event` value.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Pause { .. } => "pause",
            Kind::Resume { .. } => "resume",
            Kind::Rate { .. } => "rate",
            Kind::Stop { .. } => "stop",
            Kind::Abort { .. } => "abort",
            Kind::StopWhen { .. } => "stop_when",
            Kind::Interrupt {} => "interrupt",
            Kind::Action(_) => "action",
        }
    }

    /// Live control (pause, resume, rate, stop)?
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Kind::Pause { .. } | Kind::Resume { .. } | Kind::Rate { .. } | Kind::Stop { .. }
        )
    }
}

impl Event {
    /// The short label a chart marks this event with.
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::Rate {
                set: Some(v),
                factor: None,
                ..
            } => format!("set to {}", crate::ops::fmt_num(*v)),
            Kind::Rate {
                factor: Some(f), ..
            } => format!("factor {}", crate::ops::fmt_num(*f)),
            Kind::Action(a) => a.name.clone(),
            k => k.name().to_string(),
        }
    }

    /// A scheduled action's event, with the sentence for people.
    pub fn action(t: f64, a: ActionEvent) -> Event {
        let detail = format!(
            "{}: {} → {}{} in {:.3}s ({})",
            a.name,
            a.did,
            a.result,
            if a.ok { "" } else { " (failed)" },
            a.duration_s,
            a.trigger
        );
        Event {
            t,
            kind: Kind::Action(a),
            detail,
        }
    }

    /// A live-control command as the timeline records it.
    pub fn from_applied(a: &crate::ops::Applied) -> Event {
        use crate::ops::Command;
        let source = a.source.clone();
        let kind = match a.command {
            Command::Pause => Kind::Pause { source },
            Command::Resume => Kind::Resume { source },
            Command::Factor(f) | Command::Scale(f) => Kind::Rate {
                factor: Some(f),
                set: None,
                source,
            },
            Command::Set(v) => Kind::Rate {
                factor: None,
                set: Some(v),
                source,
            },
            Command::Stop => Kind::Stop { source },
        };
        Event {
            t: a.t,
            kind,
            detail: a.detail.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_event_name_and_typed_fields_in_json() {
        let e = Event {
            t: 2.5,
            kind: Kind::Rate {
                factor: Some(0.5),
                set: None,
                source: "http".into(),
            },
            detail: "factor 0.5 of the plan (http)".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "rate");
        assert_eq!(v["factor"], 0.5);
        assert_eq!(v["source"], "http");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
        assert_eq!(e.label(), "factor 0.5");
        let i = Event {
            t: 1.0,
            kind: Kind::Interrupt {},
            detail: "Ctrl-C".into(),
        };
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["event"], "interrupt");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), i);
        // A report written before the typed fields still reads.
        let old: Event = serde_json::from_str(
            r#"{"t":3,"event":"pause","detail":"new arrivals paused (http)"}"#,
        )
        .unwrap();
        assert_eq!(
            old.kind,
            Kind::Pause {
                source: String::new()
            }
        );
    }
}
