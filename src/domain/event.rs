//! An event as stored: its envelope, its body byte for byte, what it carries,
//! and what became of it.

use serde::{Deserialize, Serialize};

use super::Object;

/// What an event carries, as far as the service can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A type with an effect, carrying an object the service can apply.
    Object(Box<Object>),
    /// A type with no effect: stored, nothing else.
    NoEffect,
    /// A type with an effect whose object cannot be applied; the reason names the field.
    Unappliable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    /// CasaPay's `created`; `None` when missing (such an event is quarantined).
    pub created: Option<i64>,
    /// `None` when the event does not say (treated as live).
    pub livemode: Option<bool>,
    pub object_id: Option<String>,
    pub content: Content,
    /// The body exactly as received.
    pub body: String,
}

impl Event {
    pub fn is_live(&self) -> bool {
        self.livemode.unwrap_or(true)
    }
}

/// What became of a stored event (SPEC §3 Quarantine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventState {
    /// It changed its object.
    Applied,
    /// Older than the stored state of its object: kept, no effect.
    Superseded,
    /// A type with no effect.
    Recorded,
    /// Its object cannot be applied; the reason names the field.
    Quarantined(String),
    /// A `livemode` this deployment does not reconcile.
    OtherMode,
}

impl EventState {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventState::Applied => "applied",
            EventState::Superseded => "superseded",
            EventState::Recorded => "recorded",
            EventState::Quarantined(_) => "quarantined",
            EventState::OtherMode => "other_mode",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            EventState::Quarantined(reason) => Some(reason),
            _ => None,
        }
    }

    /// Every state name, for validating a `state=` filter.
    pub const NAMES: [&'static str; 5] = [
        "applied",
        "superseded",
        "recorded",
        "quarantined",
        "other_mode",
    ];
}

/// Which CasaPay mode a deployment reconciles (`CASAPAY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only `livemode: true` events (or events without the field).
    #[default]
    Live,
    /// Only `livemode: false` events.
    Test,
    /// Both.
    Any,
}

impl Mode {
    pub fn accepts(self, event: &Event) -> bool {
        match self {
            Mode::Live => event.is_live(),
            Mode::Test => !event.is_live(),
            Mode::Any => true,
        }
    }
}
