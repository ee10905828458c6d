//! How values look to people, the same in every output: money with its
//! currency's symbol, dates, text tables, CSV cells safe for spreadsheets.

use serde::Deserialize;

use crate::domain::{Currency, Money};

/// An output format of reconciliation, reports and arrears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// `€1,200.00`; amounts in stored data are always valid `Money`.
pub fn money(minor: i64, currency: Currency) -> String {
    Money::new(minor, currency).map_or_else(|_| format!("{minor} {currency}"), |m| m.to_string())
}

/// `2025-03-25 02:40 UTC` for a unix time.
pub fn timestamp(unix_seconds: i64) -> String {
    jiff::Timestamp::from_second(unix_seconds).map_or_else(
        |_| unix_seconds.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Spreadsheets run cells that begin with = + - @ (or a tab or CR) as formulas:
/// such cells get a leading apostrophe.
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Control characters (a newline in a property name) would forge lines in a
/// terminal table or a log: each is shown as a space.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// CSV with a header, every cell neutralised.
pub fn csv<I, R>(header: &[&str], rows: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut bytes = Vec::new();
    write_csv(&mut bytes, header, rows).expect("writing to memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings")
}

/// [`csv`] written to `out` row by row, never held whole.
pub fn write_csv<W, I, R>(out: W, header: &[&str], rows: I) -> std::io::Result<()>
where
    W: std::io::Write,
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut writer = CsvRows::new(out, header)?;
    for row in rows {
        writer.row(row)?;
    }
    writer.finish()
}

/// A CSV document written a row at a time, for rows that come from a callback.
pub struct CsvRows<W: std::io::Write>(csv::Writer<W>);

impl<W: std::io::Write> CsvRows<W> {
    pub fn new(out: W, header: &[&str]) -> std::io::Result<Self> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(header)?;
        Ok(Self(writer))
    }

    pub fn row(&mut self, row: impl IntoIterator<Item = String>) -> std::io::Result<()> {
        Ok(self
            .0
            .write_record(row.into_iter().map(|cell| neutralise(&cell)))?)
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Columns padded to their widest cell; `right` columns are right-aligned.
pub fn table(headers: &[&str], right: &[usize], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = " ".repeat(widths[i] - cell.chars().count());
                if right.contains(&i) {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(neutralise(cell).starts_with('\''), "{cell}");
        }
        assert_eq!(neutralise("prop_1"), "prop_1");
    }

    #[test]
    fn tables_align_columns_and_never_break_a_line() {
        let out = table(
            &["A", "AMOUNT"],
            &[1],
            &[vec!["long\nvalue".into(), "€1.00".into()]],
        );
        assert_eq!(out, "A           AMOUNT\nlong value   €1.00\n");
    }
}
