//! What each mail says (SPEC §7). A missing value never shows as text: a
//! sentence without it is used instead.

use jiff::tz::TimeZone;

use super::MailContent;
use crate::domain::{MailKind, PayoutFacts, Period, RequestFacts};

/// "March 2025".
pub fn month_label(period: Period) -> String {
    period.day(1).strftime("%B %Y").to_string()
}

/// "25 March 2025" in the configured zone.
pub fn date_label(unix_seconds: i64, timezone: &TimeZone) -> String {
    jiff::Timestamp::from_second(unix_seconds)
        .map(|t| {
            t.to_zoned(timezone.clone())
                .strftime("%-d %B %Y")
                .to_string()
        })
        .unwrap_or_else(|_| unix_seconds.to_string())
}

fn greeting(name: Option<&str>) -> String {
    name.map_or_else(|| "Hello,".to_string(), |name| format!("Hello {name},"))
}

fn fact(label: &str, value: impl Into<String>) -> (String, String) {
    (label.to_string(), value.into())
}

pub fn request_mail(
    pr: &RequestFacts,
    kind: MailKind,
    greet: Option<&str>,
    timezone: &TimeZone,
) -> MailContent {
    let amount = pr.amount.to_string();
    // "for 12 Oak St — March 2025", or the request itself when it matched no line.
    let (what, mut facts_list) = match &pr.line {
        Some((property, period)) => (
            format!("{property} — {}", month_label(*period)),
            vec![
                fact("Property", property.clone()),
                fact("Period", month_label(*period)),
            ],
        ),
        None => (format!("payment request {}", pr.request_id), Vec::new()),
    };
    facts_list.push(fact("Amount", amount.clone()));
    let because = pr
        .failure_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let (subject, paragraphs) = match kind {
        MailKind::RentReceived => (
            format!("Rent received for {what}: {amount}"),
            vec![format!(
                "The rent of {amount} for {what} has been collected."
            )],
        ),
        MailKind::CollectionRetrying => {
            let mut paragraphs = vec![format!(
                "Collecting the rent of {amount} for {what} did not go through{because}."
            )];
            if let Some(attempts) = pr.attempts {
                paragraphs.push(format!("That was attempt {attempts} of 3."));
                facts_list.push(fact("Attempt", format!("{attempts} of 3")));
            }
            let subject = match pr.next_retry {
                Some((at, estimated)) => {
                    let date = date_label(at, timezone);
                    paragraphs.push(if estimated {
                        format!("CasaPay will try again around {date}, following its retry schedule. You do not need to do anything.")
                    } else {
                        format!("CasaPay will try again on {date}. You do not need to do anything.")
                    });
                    facts_list.push(fact("Next attempt", date.clone()));
                    format!("Rent collection for {what} failed; retrying {date}")
                }
                None => {
                    paragraphs.push(
                        "CasaPay will try again. You do not need to do anything.".to_string(),
                    );
                    format!("Rent collection for {what} failed; CasaPay will retry")
                }
            };
            (subject, paragraphs)
        }
        _ => (
            format!("Rent collection failed for {what}: {amount}"),
            vec![
                format!(
                    "CasaPay could not collect the rent of {amount} for {what}{because} and will not try again."
                ),
                "Your property manager will follow up with the tenant.".to_string(),
            ],
        ),
    };
    if let Some(reason) = &pr.failure_reason
        && kind != MailKind::RentReceived
    {
        facts_list.push(fact("Reason", reason.clone()));
    }
    if let Some(method) = &pr.payment_method_used {
        facts_list.push(fact("Payment method", method.clone()));
    }
    facts_list.push(fact("Reference", pr.request_id.clone()));
    MailContent {
        subject,
        greeting: greeting(greet),
        paragraphs,
        facts: facts_list,
    }
}

pub fn payout_mail(
    po: &PayoutFacts,
    kind: MailKind,
    greet: Option<&str>,
    timezone: &TimeZone,
) -> MailContent {
    let amount = po.amount.to_string();
    let for_month = po
        .period
        .map(|p| format!(" for {}", month_label(p)))
        .unwrap_or_default();
    let mut facts_list = vec![fact("Amount", amount.clone())];
    if let Some(period) = po.period {
        facts_list.push(fact("Period", month_label(period)));
    }
    let (subject, paragraphs) = if kind == MailKind::PayoutPaid {
        let paragraph = match po.arrival_date {
            Some(at) => {
                let arrival = date_label(at, timezone);
                facts_list.push(fact("Arrival", arrival.clone()));
                format!(
                    "Your payout of {amount}{for_month} has been paid and should arrive on {arrival}."
                )
            }
            None => format!("Your payout of {amount}{for_month} has been paid."),
        };
        (format!("Payout paid: {amount}{for_month}"), vec![paragraph])
    } else {
        let first = match po.failure.as_deref() {
            Some(reason) => {
                facts_list.push(fact("Reason", reason));
                format!("Your payout of {amount}{for_month} could not be paid: {reason}.")
            }
            None => format!("Your payout of {amount}{for_month} could not be paid."),
        };
        (
            format!("Payout failed: {amount}{for_month}"),
            vec![
                first,
                "Next step: please check your bank details with your property manager; the payout is sent again once they are corrected.".to_string(),
            ],
        )
    };
    if let Some(destination) = &po.destination {
        facts_list.push(fact("Destination", destination.clone()));
    }
    facts_list.push(fact("Reference", po.payout_id.clone()));
    MailContent {
        subject,
        greeting: greeting(greet),
        paragraphs,
        facts: facts_list,
    }
}
