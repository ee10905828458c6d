//! The one rule for identifiers (event, object, property, landlord ids):
//! 1 to 255 printable characters.

const MAX_ID_LEN: usize = 255;

/// Checks `text` as an id; the error says what an id must be.
pub fn check_id(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > MAX_ID_LEN || text.chars().any(char::is_control) {
        return Err(format!("must be 1 to {MAX_ID_LEN} printable characters"));
    }
    Ok(())
}

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
}
