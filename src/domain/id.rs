//! Identifiers: the one rule for them (1 to 255 printable characters) and
//! the rent roll's ids as types that cannot hold anything else, so that a
//! landlord id is never passed where a property id is meant.

use std::borrow::Borrow;
use std::fmt;

const MAX_ID_LEN: usize = 255;

/// Checks `text` as an id; the error says what an id must be.
pub fn check_id(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > MAX_ID_LEN || text.chars().any(char::is_control) {
        return Err(format!("must be 1 to {MAX_ID_LEN} printable characters"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id that follows [`check_id`]; the error says why not.
            pub fn parse(text: impl Into<String>) -> Result<Self, String> {
                let text = text.into();
                check_id(&text)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // An id reads as the text it is wherever text is taken (a query's
        // parameter, a lookup by `&str`); only making one is checked.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A property of the rent roll (`prop_…`).
    PropertyId
);
id_type!(
    /// A landlord of the rent roll (`ll_…`).
    LandlordId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_printable_and_not_empty() {
        assert!(check_id("preq_1").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("a\nb").is_err());
        assert!(check_id(&"x".repeat(256)).is_err());
        assert!(check_id(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn typed_ids_hold_only_valid_ids_and_read_as_text() {
        let id = PropertyId::parse("prop_1").unwrap();
        assert_eq!(id, "prop_1");
        assert_eq!(id.to_string(), "prop_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""prop_1""#);
        assert!(LandlordId::parse("").is_err());
        assert!(serde_json::from_str::<LandlordId>(r#""a\nb""#).is_err());
    }
}
