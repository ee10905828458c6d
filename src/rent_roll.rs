//! The rent roll CSV (SPEC §4): parsed and validated whole before anything is
//! written, every error reported with its line, column and reason.
//!
//! Pure: bytes in, a [`RentRoll`] or every [`RowError`] out.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::Serialize;

use crate::domain::{Currency, LandlordId, Money, Period, PropertyId, check_id};

const REQUIRED: [&str; 5] = ["property_id", "landlord_id", "period", "amount", "currency"];
const OPTIONAL: [&str; 8] = [
    "payment_agreement",
    "landlord_email",
    "landlord_name",
    "property_name",
    "due_date",
    "notify",
    "commission_bps",
    "bank_account",
];

/// One rent the manager expects: a property, a month, an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedLine {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub period: Period,
    pub amount: Money,
    pub due_date: Date,
    pub commission_bps: u32,
    /// Line of the CSV it came from.
    pub line: u64,
}

/// A landlord as the file describes it; `None` fields leave what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landlord {
    pub id: LandlordId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub notify: Option<bool>,
    /// CasaPay bank account (`ba_…`) payouts to this landlord go to.
    pub bank_account: Option<String>,
    /// Line of the CSV that first named it.
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub id: PropertyId,
    pub landlord_id: LandlordId,
    pub name: Option<String>,
    pub payment_agreement: Option<String>,
    pub line: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RentRoll {
    pub landlords: Vec<Landlord>,
    pub properties: Vec<Property>,
    pub lines: Vec<ExpectedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Every problem found in a rejected file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rent roll has {} error(s); nothing was imported", .0.len())]
pub struct RentRollErrors(pub Vec<RowError>);

fn error(line: u64, column: Option<&str>, message: impl Into<String>) -> RowError {
    RowError {
        line,
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// Column positions, from a header that names every required column once.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut positions = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
                errors.push(error(
                    1,
                    Some(&name),
                    format!(
                        "unknown column; the columns are {} (required) and {}",
                        REQUIRED.join(", "),
                        OPTIONAL.join(", ")
                    ),
                ));
            } else if positions.insert(name.clone(), index).is_some() {
                errors.push(error(1, Some(&name), "column appears twice"));
            }
        }
        for required in REQUIRED {
            if !positions.contains_key(required) {
                errors.push(error(1, Some(required), "required column is missing"));
            }
        }
        if errors.is_empty() {
            Ok(Self(positions))
        } else {
            Err(errors)
        }
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.0
            .get(column)
            .and_then(|&i| record.get(i))
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }
}

/// Collects the errors of one row, so that a row reports all its bad cells at once.
struct Row<'a> {
    columns: &'a Columns,
    record: &'a csv::StringRecord,
    line: u64,
    errors: Vec<RowError>,
}

impl Row<'_> {
    fn fail(&mut self, column: &str, message: impl Into<String>) {
        self.errors.push(error(self.line, Some(column), message));
    }

    fn optional(&self, column: &str) -> Option<String> {
        self.columns.get(self.record, column).map(str::to_string)
    }

    fn parsed<T>(
        &mut self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.columns.get(self.record, column) {
            None => {
                self.fail(column, "is empty");
                None
            }
            Some(text) => parse(text)
                .map_err(|message| self.fail(column, message))
                .ok(),
        }
    }

    fn parsed_optional<T>(
        &mut self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.columns.get(self.record, column)?;
        parse(text)
            .map_err(|message| self.fail(column, message))
            .ok()
    }
}

/// How a row says when rent is due.
#[derive(Debug, Clone, Copy)]
enum Due {
    Date(Date),
    DayOfMonth(i8),
}

fn parse_due(text: &str) -> Result<Due, String> {
    if let Ok(day) = text.parse::<i8>() {
        return if (1..=28).contains(&day) {
            Ok(Due::DayOfMonth(day))
        } else {
            Err(format!("day of month `{text}` must be 1 to 28"))
        };
    }
    Date::from_str(text)
        .map(Due::Date)
        .map_err(|_| format!("`{text}` is neither a date YYYY-MM-DD nor a day of month 1 to 28"))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

fn parse_email(text: &str) -> Result<String, String> {
    text.parse::<lettre::Address>()
        .map(|address| address.to_string())
        .map_err(|e| format!("`{text}` is not an e-mail address: {e}"))
}

fn parse_bps(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(bps) if bps <= 10_000 => Ok(bps),
        _ => Err(format!(
            "`{text}` is not a whole number of basis points from 0 to 10000"
        )),
    }
}

/// Keeps the first value of a field per id, and reports a later, different one.
fn reconcile_field(
    errors: &mut Vec<RowError>,
    line: u64,
    column: &str,
    what: &str,
    stored: &mut Option<String>,
    new: Option<String>,
) {
    match (stored.as_ref(), new) {
        (Some(old), Some(new)) if *old != new => errors.push(error(
            line,
            Some(column),
            format!("{what} is `{old}` on an earlier line but `{new}` here"),
        )),
        (None, Some(new)) => *stored = Some(new),
        _ => {}
    }
}

/// One row's cells, each valid on its own.
struct RowValues {
    line: u64,
    property_id: PropertyId,
    landlord_id: LandlordId,
    periods: Vec<Period>,
    amount: Money,
    due: Option<Due>,
    notify: Option<bool>,
    email: Option<String>,
    bank_account: Option<String>,
    commission_bps: u32,
    landlord_name: Option<String>,
    property_name: Option<String>,
    agreement: Option<String>,
}

/// Reads one row's cells; every bad cell of the row is reported at once.
fn row_values(
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
) -> Result<RowValues, Vec<RowError>> {
    let mut row = Row {
        columns,
        record,
        line,
        errors: Vec::new(),
    };
    let property_id = row.parsed("property_id", |t| PropertyId::parse(t));
    let landlord_id = row.parsed("landlord_id", |t| LandlordId::parse(t));
    let periods = row.parsed("period", |t| {
        Period::parse_range(t).map_err(|e| e.to_string())
    });
    let currency = row.parsed("currency", |t| {
        Currency::parse(&t.to_ascii_lowercase()).map_err(|e| e.to_string())
    });
    let amount = match currency {
        Some(currency) => row.parsed("amount", |t| match Money::parse_minor(t, currency) {
            Ok(money) if money.minor() == 0 => Err("must be more than 0".to_string()),
            other => other.map_err(|e| e.to_string()),
        }),
        None => None,
    };
    let due = row.parsed_optional("due_date", parse_due);
    let notify = row.parsed_optional("notify", parse_bool);
    let email = row.parsed_optional("landlord_email", parse_email);
    let bank_account = row.parsed_optional("bank_account", |t| check_id(t).map(|()| t.to_string()));
    let commission_bps = row
        .parsed_optional("commission_bps", parse_bps)
        .unwrap_or(0);
    if let (Some(Due::Date(_)), Some(periods)) = (due, &periods)
        && periods.len() > 1
    {
        row.fail(
            "due_date",
            "a period range needs a day of month (1 to 28), not a date",
        );
    }
    match (property_id, landlord_id, periods, amount) {
        (Some(property_id), Some(landlord_id), Some(periods), Some(amount))
            if row.errors.is_empty() =>
        {
            Ok(RowValues {
                line,
                landlord_name: row.optional("landlord_name"),
                property_name: row.optional("property_name"),
                agreement: row.optional("payment_agreement"),
                property_id,
                landlord_id,
                periods,
                amount,
                due,
                notify,
                email,
                bank_account,
                commission_bps,
            })
        }
        _ => Err(row.errors),
    }
}

/// The file so far, and the checks between its rows: one landlord per
/// property, one value per landlord and property field, one owner per
/// agreement and bank account, one line per (property, period).
#[derive(Default)]
struct RollBuilder {
    roll: RentRoll,
    errors: Vec<RowError>,
    landlords: HashMap<LandlordId, usize>,
    properties: HashMap<PropertyId, usize>,
    seen: HashMap<(PropertyId, Period), u64>,
    agreements: HashMap<String, String>,
    bank_accounts: HashMap<String, String>,
}

/// Records `owner` as the one owner of `key`, or reports the earlier one.
fn claim(
    owners: &mut HashMap<String, String>,
    errors: &mut Vec<RowError>,
    (line, column, what): (u64, &str, &str),
    key: &str,
    owner: &str,
) {
    match owners.get(key) {
        Some(earlier) if earlier != owner => errors.push(error(
            line,
            Some(column),
            format!("{what} {key} already belongs to {earlier}"),
        )),
        _ => {
            owners.insert(key.to_string(), owner.to_string());
        }
    }
}

impl RollBuilder {
    fn add(&mut self, row: RowValues) {
        self.add_landlord(&row);
        self.add_property(&row);
        self.add_lines(row);
    }

    fn add_landlord(&mut self, row: &RowValues) {
        let line = row.line;
        let roll = &mut self.roll;
        let index = *self
            .landlords
            .entry(row.landlord_id.clone())
            .or_insert_with(|| {
                roll.landlords.push(Landlord {
                    id: row.landlord_id.clone(),
                    name: None,
                    email: None,
                    notify: None,
                    bank_account: None,
                    line,
                });
                roll.landlords.len() - 1
            });
        let errors = &mut self.errors;
        let landlord = &mut roll.landlords[index];
        reconcile_field(
            errors,
            line,
            "landlord_name",
            "landlord name",
            &mut landlord.name,
            row.landlord_name.clone(),
        );
        reconcile_field(
            errors,
            line,
            "landlord_email",
            "landlord e-mail",
            &mut landlord.email,
            row.email.clone(),
        );
        match (landlord.notify, row.notify) {
            (Some(old), Some(new)) if old != new => errors.push(error(
                line,
                Some("notify"),
                format!(
                    "notify for {} is {old} on an earlier line but {new} here",
                    row.landlord_id
                ),
            )),
            (None, Some(new)) => landlord.notify = Some(new),
            _ => {}
        }
        if let Some(account) = &row.bank_account {
            let owner = format!("landlord {}", row.landlord_id);
            claim(
                &mut self.bank_accounts,
                errors,
                (line, "bank_account", "bank account"),
                account,
                &owner,
            );
        }
        reconcile_field(
            errors,
            line,
            "bank_account",
            "bank account",
            &mut landlord.bank_account,
            row.bank_account.clone(),
        );
    }

    fn add_property(&mut self, row: &RowValues) {
        let line = row.line;
        let roll = &mut self.roll;
        let index = *self
            .properties
            .entry(row.property_id.clone())
            .or_insert_with(|| {
                roll.properties.push(Property {
                    id: row.property_id.clone(),
                    landlord_id: row.landlord_id.clone(),
                    name: None,
                    payment_agreement: None,
                    line,
                });
                roll.properties.len() - 1
            });
        let errors = &mut self.errors;
        let property = &mut roll.properties[index];
        if property.landlord_id != row.landlord_id {
            errors.push(error(
                line,
                Some("landlord_id"),
                format!(
                    "property {} belongs to {} on line {} but to {} here",
                    row.property_id, property.landlord_id, property.line, row.landlord_id
                ),
            ));
        }
        reconcile_field(
            errors,
            line,
            "property_name",
            "property name",
            &mut property.name,
            row.property_name.clone(),
        );
        if let Some(agreement) = &row.agreement {
            let owner = format!("property {}", row.property_id);
            claim(
                &mut self.agreements,
                errors,
                (line, "payment_agreement", "payment agreement"),
                agreement,
                &owner,
            );
        }
        reconcile_field(
            errors,
            line,
            "payment_agreement",
            "payment agreement",
            &mut property.payment_agreement,
            row.agreement.clone(),
        );
    }

    fn add_lines(&mut self, row: RowValues) {
        for period in row.periods {
            if let Some(first) = self
                .seen
                .insert((row.property_id.clone(), period), row.line)
            {
                self.errors.push(error(
                    row.line,
                    Some("period"),
                    format!(
                        "{} {period} is already expected on line {first}",
                        row.property_id
                    ),
                ));
                continue;
            }
            let due_date = match row.due {
                Some(Due::Date(date)) => date,
                Some(Due::DayOfMonth(day)) => period.day(day),
                None => period.day(1),
            };
            self.roll.lines.push(ExpectedLine {
                property_id: row.property_id.clone(),
                landlord_id: row.landlord_id.clone(),
                period,
                amount: row.amount,
                due_date,
                commission_bps: row.commission_bps,
                line: row.line,
            });
        }
    }

    fn finish(mut self) -> Result<RentRoll, RentRollErrors> {
        if self.roll.lines.is_empty() && self.errors.is_empty() {
            self.errors
                .push(error(1, None, "the file has a header but no rows"));
        }
        if self.errors.is_empty() {
            Ok(self.roll)
        } else {
            self.errors.sort_by_key(|e| e.line);
            Err(RentRollErrors(self.errors))
        }
    }
}

/// Without a BOM, and with LF line ends: the csv crate counts lines by LF
/// only after a CR ends a record, so CRLF files would report every row on
/// the wrong line.
fn normalised(input: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let input = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
    if !input.windows(2).any(|w| w == b"\r\n") {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut lf = Vec::with_capacity(input.len());
    for (i, &byte) in input.iter().enumerate() {
        if !(byte == b'\r' && input.get(i + 1) == Some(&b'\n')) {
            lf.push(byte);
        }
    }
    std::borrow::Cow::Owned(lf)
}

fn header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
) -> Result<csv::StringRecord, RentRollErrors> {
    match reader.headers() {
        Ok(header) if header.iter().any(|h| !h.trim().is_empty()) => Ok(header.clone()),
        Ok(_) => Err(RentRollErrors(vec![error(
            1,
            None,
            "the file is empty: expected a header row",
        )])),
        Err(e) => Err(RentRollErrors(vec![error(
            1,
            None,
            format!("unreadable header: {e}"),
        )])),
    }
}

pub fn parse(input: &[u8]) -> Result<RentRoll, RentRollErrors> {
    let input = normalised(input);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&*input);
    let header = header(&mut reader)?;
    let columns = Columns::from_header(&header).map_err(RentRollErrors)?;
    let mut builder = RollBuilder::default();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                builder
                    .errors
                    .push(error(line, None, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue; // blank lines, as spreadsheets leave them
        }
        if record.len() != header.len() {
            builder.errors.push(error(
                line,
                None,
                format!(
                    "has {} cells but the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        match row_values(&columns, &record, line) {
            Ok(row) => builder.add(row),
            Err(mut errors) => builder.errors.append(&mut errors),
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(csv: &str) -> Vec<RowError> {
        parse(csv.as_bytes()).expect_err("the file is rejected").0
    }

    fn has(errors: &[RowError], line: u64, column: &str, text: &str) -> bool {
        errors.iter().any(|e| {
            e.line == line && e.column.as_deref() == Some(column) && e.message.contains(text)
        })
    }

    #[test]
    fn columns_in_any_order_ranges_expanded_defaults_applied() {
        let roll = parse(
            b"\xef\xbb\xbfcurrency,amount,period,landlord_id,property_id,due_date,landlord_email,property_name\r\n\
              EUR,120000,2025-01..2025-03,ll_1,prop_1,5,owner@example.com,12 Oak St\r\n\
              gbp,95000,2025-02,ll_2,prop_2,2025-01-28,,\r\n\r\n",
        )
        .unwrap();
        assert_eq!(roll.lines.len(), 4);
        assert_eq!(roll.lines[0].period.to_string(), "2025-01");
        assert_eq!(roll.lines[2].due_date.to_string(), "2025-03-05");
        assert_eq!(roll.lines[3].due_date.to_string(), "2025-01-28");
        assert_eq!(roll.lines[3].amount.currency().code(), "gbp");
        assert_eq!(roll.lines[0].line, 2);
        assert_eq!(
            roll.landlords[0].email.as_deref(),
            Some("owner@example.com")
        );
        assert_eq!(roll.properties[0].name.as_deref(), Some("12 Oak St"));
        assert_eq!(roll.lines[3].commission_bps, 0);
    }

    #[test]
    fn every_bad_cell_is_reported_with_line_and_column() {
        let found = errors(
            "property_id,landlord_id,period,amount,currency,landlord_email,notify,commission_bps,due_date\n\
             prop_1,ll_1,2025-03,1200.00,eur,,,,\n\
             prop_2,ll_1,2025-13,1000,eur,,,,\n\
             prop_3,ll_1,2025-03,1000,xyz,,,,\n\
             prop_4,ll_1,2025-03,-5,eur,,,,\n\
             prop_5,ll_2,2025-03,1000,eur,not-an-email,,,\n\
             prop_6,ll_3,2025-03,1000,eur,,maybe,20000,31\n\
             prop_7,ll_4,2025-03,1000,eur,,,,\n\
             prop_7,ll_4,2025-03,1000,eur,,,,\n\
             ,ll_5,2025-03,1000,eur,,,,\n",
        );
        assert!(
            has(&found, 2, "amount", "not an integer amount in minor units"),
            "{found:?}"
        );
        assert!(has(&found, 3, "period", "2025-13"), "{found:?}");
        assert!(has(&found, 4, "currency", "xyz"), "{found:?}");
        assert!(has(&found, 5, "amount", "negative"), "{found:?}");
        assert!(
            has(&found, 6, "landlord_email", "not an e-mail address"),
            "{found:?}"
        );
        assert!(has(&found, 7, "notify", "true or false"), "{found:?}");
        assert!(
            has(&found, 7, "commission_bps", "basis points"),
            "{found:?}"
        );
        assert!(has(&found, 7, "due_date", "1 to 28"), "{found:?}");
        assert!(
            has(&found, 9, "period", "already expected on line 8"),
            "{found:?}"
        );
        assert!(has(&found, 10, "property_id", "is empty"), "{found:?}");
        assert_eq!(found.len(), 10, "{found:?}");
    }

    #[test]
    fn header_problems_are_reported_on_line_one() {
        let found =
            errors("property_id,landlord_id,period,amount,amount,ammount\nx,y,2025-01,1,eur\n");
        assert!(
            has(&found, 1, "currency", "required column is missing"),
            "{found:?}"
        );
        assert!(has(&found, 1, "amount", "twice"), "{found:?}");
        assert!(has(&found, 1, "ammount", "unknown column"), "{found:?}");
        assert!(errors("")[0].message.contains("empty"));
        assert!(
            errors("property_id,landlord_id,period,amount,currency\n")[0]
                .message
                .contains("no rows")
        );
    }

    #[test]
    fn contradictions_between_rows_are_errors() {
        let found = errors(
            "property_id,landlord_id,period,amount,currency,landlord_email,payment_agreement\n\
             prop_1,ll_1,2025-01,1000,eur,a@example.com,pa_1\n\
             prop_1,ll_2,2025-02,1000,eur,,pa_1\n\
             prop_2,ll_1,2025-01,1000,eur,b@example.com,pa_1\n",
        );
        assert!(
            has(&found, 3, "landlord_id", "belongs to ll_1"),
            "{found:?}"
        );
        assert!(
            has(&found, 4, "landlord_email", "a@example.com"),
            "{found:?}"
        );
        assert!(
            has(
                &found,
                4,
                "payment_agreement",
                "already belongs to property prop_1"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_bank_account_names_one_landlord() {
        let roll = parse(
            b"property_id,landlord_id,period,amount,currency,bank_account\n\
              prop_1,ll_1,2025-01,1000,eur,ba_1\n\
              prop_2,ll_1,2025-01,1000,eur,\n",
        )
        .unwrap();
        assert_eq!(roll.landlords[0].bank_account.as_deref(), Some("ba_1"));
        let found = errors(
            "property_id,landlord_id,period,amount,currency,bank_account\n\
             prop_1,ll_1,2025-01,1000,eur,ba_1\n\
             prop_2,ll_2,2025-01,1000,eur,ba_1\n\
             prop_3,ll_1,2025-01,1000,eur,ba_9\n",
        );
        assert!(
            has(
                &found,
                3,
                "bank_account",
                "already belongs to landlord ll_1"
            ),
            "{found:?}"
        );
        assert!(has(&found, 4, "bank_account", "ba_1"), "{found:?}");
    }

    #[test]
    fn a_date_with_a_range_is_ambiguous() {
        let found = errors(
            "property_id,landlord_id,period,amount,currency,due_date\np,l,2025-01..2025-02,1,eur,2025-01-05\n",
        );
        assert!(has(&found, 2, "due_date", "period range"), "{found:?}");
    }
}
