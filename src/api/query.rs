//! Query parameters parsed once, with the same clear message everywhere.

use jiff::civil::Date;
use serde::Deserialize;

/// A date parameter, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct DateParam(pub Date);

impl TryFrom<String> for DateParam {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
            .map(DateParam)
            .map_err(|_| format!("`{text}` is not a date YYYY-MM-DD"))
    }
}
