//! E-mail to landlords and operations (SPEC §7): which mails an event causes
//! (pure), how they read (templates), and their delivery (worker).

pub mod delivery;

use askama::Template;
use jiff::tz::TimeZone;

use crate::domain::Period;
use crate::webhook::event::{Effect, PaymentRequestAction, PayoutAction};

/// Who else gets mail, and the zone dates are shown in.
#[derive(Debug, Clone)]
pub struct MailPolicy {
    /// Operations: copied on failures, and the daily report's recipients.
    pub report_to: Vec<String>,
    pub timezone: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    RentReceived,
    CollectionRetrying,
    CollectionFailed,
    PayoutPaid,
    PayoutFailed,
    DailyReport,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::RentReceived => "rent_received",
            MailKind::CollectionRetrying => "collection_retrying",
            MailKind::CollectionFailed => "collection_failed",
            MailKind::PayoutPaid => "payout_paid",
            MailKind::PayoutFailed => "payout_failed",
            MailKind::DailyReport => "daily_report",
        }
    }

    /// The mail an event type causes, if any.
    pub fn of(effect: &Effect) -> Option<Self> {
        match effect {
            Effect::PaymentRequest(PaymentRequestAction::Succeeded, _) => {
                Some(MailKind::RentReceived)
            }
            Effect::PaymentRequest(PaymentRequestAction::Retrying, _) => {
                Some(MailKind::CollectionRetrying)
            }
            Effect::PaymentRequest(PaymentRequestAction::Failed, _) => {
                Some(MailKind::CollectionFailed)
            }
            Effect::Payout(PayoutAction::Paid, _) => Some(MailKind::PayoutPaid),
            Effect::Payout(PayoutAction::Failed, _) => Some(MailKind::PayoutFailed),
            _ => None,
        }
    }

    /// Failures are copied to operations.
    fn copies_operations(self) -> bool {
        matches!(self, MailKind::CollectionFailed | MailKind::PayoutFailed)
    }
}

/// The landlord an object belongs to, from the rent roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlordContact {
    pub name: Option<String>,
    pub email: Option<String>,
    pub notify: bool,
    /// For PaymentRequests: the property's name, when the rent roll gives one.
    pub property_name: Option<String>,
}

/// A rendered mail for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDraft {
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail.txt")]
struct TextMail<'a> {
    content: &'a MailContent,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct HtmlMail<'a> {
    content: &'a MailContent,
}

/// What a mail says, before it is rendered as text and HTML (which escapes every value).
#[derive(Debug, Clone)]
pub struct MailContent {
    pub subject: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub facts: Vec<(String, String)>,
}

impl MailContent {
    pub fn render(&self, kind: MailKind, recipient: &str) -> MailDraft {
        MailDraft {
            kind,
            recipient: recipient.to_string(),
            subject: self.subject.clone(),
            text: TextMail { content: self }
                .render()
                .expect("the text mail template renders"),
            html: HtmlMail { content: self }
                .render()
                .expect("the HTML mail template renders"),
        }
    }
}

/// "March 2025" for a valid period, the raw text otherwise.
pub fn period_label(period: Option<&str>) -> String {
    match period.map(|p| (p, p.parse::<Period>())) {
        Some((_, Ok(period))) => period.day(1).strftime("%B %Y").to_string(),
        Some((raw, Err(_))) => raw.to_string(),
        None => "(no period)".to_string(),
    }
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

fn content_for(
    effect: &Effect,
    kind: MailKind,
    contact: Option<&LandlordContact>,
    policy: &MailPolicy,
) -> MailContent {
    let greeting = contact
        .and_then(|c| c.name.as_deref())
        .map_or_else(|| "Hello,".to_string(), |name| format!("Hello {name},"));
    match effect {
        Effect::PaymentRequest(_, pr) => {
            let property = contact
                .and_then(|c| c.property_name.clone())
                .or_else(|| pr.property_id.clone())
                .unwrap_or_else(|| "your property".to_string());
            let month = period_label(pr.period.as_deref());
            let amount = pr.amount.to_string();
            let mut facts = vec![
                ("Property".to_string(), property.clone()),
                ("Period".to_string(), month.clone()),
                ("Amount".to_string(), amount.clone()),
            ];
            let reason = pr
                .failure_reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_string());
            let (subject, paragraphs) = match kind {
                MailKind::RentReceived => (
                    format!("Rent received for {property} — {month}: {amount}"),
                    vec![format!(
                        "The rent of {amount} for {property} for {month} has been collected."
                    )],
                ),
                MailKind::CollectionRetrying => {
                    let retry = pr
                        .next_retry_at
                        .map_or_else(|| "soon".to_string(), |t| date_label(t, &policy.timezone));
                    facts.push(("Reason".to_string(), reason.clone()));
                    facts.push(("Next attempt".to_string(), retry.clone()));
                    (
                        format!(
                            "Rent collection for {property} — {month} failed; retrying {retry}"
                        ),
                        vec![
                            format!(
                                "Collecting the rent of {amount} for {property} for {month} did not go through ({reason})."
                            ),
                            format!(
                                "CasaPay will try again on {retry}. You do not need to do anything."
                            ),
                        ],
                    )
                }
                _ => {
                    facts.push(("Reason".to_string(), reason.clone()));
                    (
                        format!("Rent collection failed for {property} — {month}: {amount}"),
                        vec![
                            format!(
                                "CasaPay could not collect the rent of {amount} for {property} for {month} ({reason}) and will not try again."
                            ),
                            "Your property manager will follow up with the tenant.".to_string(),
                        ],
                    )
                }
            };
            facts.push(("Reference".to_string(), pr.id.clone()));
            MailContent {
                subject,
                greeting,
                paragraphs,
                facts,
            }
        }
        Effect::Payout(_, po) => {
            let month = period_label(po.period.as_deref());
            let amount = po.amount.to_string();
            let mut facts = vec![
                ("Amount".to_string(), amount.clone()),
                ("Period".to_string(), month.clone()),
            ];
            let (subject, paragraphs) = if kind == MailKind::PayoutPaid {
                let arrival = po.arrival_date.map_or_else(
                    || "shortly".to_string(),
                    |t| date_label(t, &policy.timezone),
                );
                facts.push(("Arrival".to_string(), arrival.clone()));
                (
                    format!("Payout paid: {amount} for {month}"),
                    vec![format!(
                        "Your payout of {amount} for {month} has been paid and should arrive on {arrival}."
                    )],
                )
            } else {
                let reason = po
                    .failure_message
                    .clone()
                    .or_else(|| po.failure_code.clone())
                    .unwrap_or_else(|| "no reason given".to_string());
                facts.push(("Reason".to_string(), reason.clone()));
                (
                    format!("Payout failed: {amount} for {month}"),
                    vec![
                        format!("Your payout of {amount} for {month} could not be paid: {reason}"),
                        "Next step: please check your bank details with your property manager; the payout is sent again once they are corrected.".to_string(),
                    ],
                )
            };
            if let Some(destination) = &po.destination {
                facts.push(("Destination".to_string(), destination.clone()));
            }
            facts.push(("Reference".to_string(), po.id.clone()));
            MailContent {
                subject,
                greeting,
                paragraphs,
                facts,
            }
        }
    }
}

/// The mails an applied event causes: to the landlord (with an address and
/// `notify`), and for failures to operations too. One per recipient.
pub fn drafts_for_event(
    effect: &Effect,
    contact: Option<&LandlordContact>,
    policy: &MailPolicy,
) -> Vec<MailDraft> {
    let Some(kind) = MailKind::of(effect) else {
        return Vec::new();
    };
    let mut drafts = Vec::new();
    if let Some(landlord) = contact
        && landlord.notify
        && let Some(email) = &landlord.email
    {
        drafts.push(content_for(effect, kind, contact, policy).render(kind, email));
    }
    if kind.copies_operations() {
        let content = content_for(effect, kind, None, policy);
        for address in &policy.report_to {
            if !drafts.iter().any(|d| d.recipient == *address) {
                drafts.push(content.render(kind, address));
            }
        }
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::event;

    fn policy() -> MailPolicy {
        MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: TimeZone::get("Europe/Paris").unwrap(),
        }
    }

    fn contact(notify: bool, email: Option<&str>) -> LandlordContact {
        LandlordContact {
            name: Some("Ana".into()),
            email: email.map(str::to_string),
            notify,
            property_name: Some("12 Oak St".into()),
        }
    }

    fn effect(kind: &str, object: &str) -> Effect {
        let body =
            format!(r#"{{"id":"evt_1","type":"{kind}","created":1,"data":{{"object":{object}}}}}"#);
        event::parse(body.as_bytes()).unwrap().effect.unwrap()
    }

    const SUCCEEDED: &str = r#"{"id":"preq_1","amount":120000,"currency":"eur","status":"succeeded","description":"<script>alert(1)</script>","metadata":{"property_id":"prop_1","period":"2025-03"}}"#;

    #[test]
    fn rent_received_goes_to_the_landlord_only() {
        let drafts = drafts_for_event(
            &effect("payment_request.succeeded", SUCCEEDED),
            Some(&contact(true, Some("ana@example.com"))),
            &policy(),
        );
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].recipient, "ana@example.com");
        assert_eq!(
            drafts[0].subject,
            "Rent received for 12 Oak St — March 2025: €1,200.00"
        );
        assert!(drafts[0].text.contains("Hello Ana,"));
        assert!(drafts[0].html.contains("€1,200.00"));
    }

    #[test]
    fn opted_out_or_unknown_landlords_get_nothing_but_operations_still_hear_of_failures() {
        let failed = effect(
            "payment_request.failed",
            r#"{"id":"preq_1","amount":100,"currency":"eur","status":"failed","failure_reason":"account_closed","metadata":{"property_id":"prop_1","period":"2025-03"}}"#,
        );
        assert!(
            drafts_for_event(
                &effect("payment_request.succeeded", SUCCEEDED),
                Some(&contact(false, Some("a@example.com"))),
                &policy()
            )
            .is_empty()
        );
        assert!(
            drafts_for_event(
                &effect("payment_request.succeeded", SUCCEEDED),
                None,
                &policy()
            )
            .is_empty()
        );
        let drafts = drafts_for_event(
            &failed,
            Some(&contact(false, Some("a@example.com"))),
            &policy(),
        );
        assert_eq!(
            drafts
                .iter()
                .map(|d| d.recipient.as_str())
                .collect::<Vec<_>>(),
            ["ops@example.com"]
        );
        assert!(drafts[0].text.contains("account_closed"));
        let both = drafts_for_event(
            &failed,
            Some(&contact(true, Some("a@example.com"))),
            &policy(),
        );
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn hostile_values_are_escaped_in_html() {
        let mut hostile = contact(true, Some("a@example.com"));
        hostile.property_name = Some("<script>alert('x')</script> & co".into());
        let drafts = drafts_for_event(
            &effect("payment_request.succeeded", SUCCEEDED),
            Some(&hostile),
            &policy(),
        );
        assert!(!drafts[0].html.contains("<script>"), "{}", drafts[0].html);
        assert!(
            drafts[0]
                .html
                .contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co"),
            "{}",
            drafts[0].html
        );
        assert!(
            drafts[0].text.contains("<script>"),
            "plain text carries the value as is"
        );
    }

    #[test]
    fn retry_dates_are_shown_in_the_configured_zone() {
        // 2025-03-24 23:30 UTC is already the 25th in Paris.
        let retrying = effect(
            "payment_request.retrying",
            r#"{"id":"preq_1","amount":95000,"currency":"eur","status":"processing","next_retry_at":1742859000,"failure_reason":"insufficient_funds","metadata":{"property_id":"prop_1","period":"2025-03"}}"#,
        );
        let drafts = drafts_for_event(
            &retrying,
            Some(&contact(true, Some("a@example.com"))),
            &policy(),
        );
        assert_eq!(
            drafts[0].subject,
            "Rent collection for 12 Oak St — March 2025 failed; retrying 25 March 2025"
        );
        assert!(drafts[0].text.contains("insufficient_funds"));
    }

    #[test]
    fn payouts_show_amount_period_and_next_step() {
        let paid = effect(
            "payout.paid",
            r#"{"id":"po_1","amount":1150000,"currency":"gbp","status":"paid","arrival_date":1742860800,"metadata":{"landlord_id":"ll_1","period":"2025-03"}}"#,
        );
        let drafts = drafts_for_event(
            &paid,
            Some(&contact(true, Some("a@example.com"))),
            &policy(),
        );
        assert_eq!(drafts[0].subject, "Payout paid: £11,500.00 for March 2025");
        assert!(drafts[0].text.contains("25 March 2025"));
        let failed = effect(
            "payout.failed",
            r#"{"id":"po_1","amount":1200,"currency":"jpy","status":"failed","failure_code":"account_closed","failure_message":"The bank account has been closed.","metadata":{"landlord_id":"ll_1","period":"2025-03"}}"#,
        );
        let drafts = drafts_for_event(
            &failed,
            Some(&contact(true, Some("a@example.com"))),
            &policy(),
        );
        assert_eq!(drafts.len(), 2);
        assert_eq!(drafts[0].subject, "Payout failed: ¥1,200 for March 2025");
        assert!(drafts[0].text.contains("Next step"));
    }
}
