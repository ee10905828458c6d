//! A secret string (signing secret, admin token, SMTP URL with a password).
//! `Debug` and `Display` never show it, so it cannot leak into logs.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh random secret: `prefix` then 32 random bytes in hex.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        Self(format!("{prefix}{}", hex::encode(bytes)))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", Secret::new("whsec_x")), "Secret(…)");
    }

    #[test]
    fn generated_secrets_differ() {
        let a = Secret::generate("whsec_");
        assert!(a.expose().starts_with("whsec_") && a.expose().len() == 6 + 64);
        assert_ne!(a, Secret::generate("whsec_"));
    }
}
