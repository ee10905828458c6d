//! E-mail to landlords and operations (SPEC §7): which message an object
//! state announces and the cause that sends it once (pure), what it says
//! ([`wording`]), how it renders (templates), and its delivery (worker).

pub mod delivery;
pub mod wording;

use askama::Template;
use jiff::tz::TimeZone;

use crate::domain::{
    LandlordContact, MailDraft, MailKind, MailMessage, PaymentRequestStatus, Payout, PayoutFacts,
    PayoutStatus, Period, RequestFacts, StoredRequest,
};
use crate::recon::rules;
use crate::store::OutboxRow;

/// Who else gets mail, and the zone dates are shown in.
#[derive(Debug, Clone)]
pub struct MailPolicy {
    /// Operations: copied on failures, and the daily report's recipients.
    pub report_to: Vec<String>,
    pub timezone: TimeZone,
}

/// An object state just reached (by an event, a sync or a replay).
#[derive(Debug, Clone, Copy)]
pub enum Reached<'a> {
    Request(&'a StoredRequest),
    Payout(&'a Payout),
}

/// The message a state announces, and its cause: the object and state, so
/// that each message goes at most once per object and state (once per
/// attempt for retries), whatever reports that state and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIntent {
    pub kind: MailKind,
    pub cause: String,
}

pub fn intent_for(reached: Reached<'_>) -> Option<MailIntent> {
    let (kind, cause) = match reached {
        Reached::Request(stored) => {
            let pr = &stored.request;
            match pr.status {
                PaymentRequestStatus::Succeeded => {
                    (MailKind::RentReceived, format!("{}:succeeded", pr.id))
                }
                PaymentRequestStatus::Failed => {
                    (MailKind::CollectionFailed, format!("{}:failed", pr.id))
                }
                _ if rules::is_retrying(stored) => {
                    let attempt = pr
                        .attempts
                        .or(pr.next_retry_at)
                        .unwrap_or(stored.version.created);
                    (
                        MailKind::CollectionRetrying,
                        format!("{}:retrying:{attempt}", pr.id),
                    )
                }
                _ => return None,
            }
        }
        Reached::Payout(po) => match po.status {
            PayoutStatus::Paid => (MailKind::PayoutPaid, format!("{}:paid", po.id)),
            PayoutStatus::Failed => (MailKind::PayoutFailed, format!("{}:failed", po.id)),
            _ => return None,
        },
    };
    Some(MailIntent { kind, cause })
}

/// The facts a request's state gives its mail, with the line it matched.
pub fn request_facts(stored: &StoredRequest, line: Option<(String, Period)>) -> RequestFacts {
    let pr = &stored.request;
    RequestFacts {
        request_id: pr.id.clone(),
        amount: pr.amount,
        failure_reason: pr.failure_reason.clone(),
        attempts: pr.attempts,
        payment_method_used: pr.payment_method_used.clone(),
        line,
        next_retry: rules::next_retry(stored),
    }
}

pub fn payout_facts(po: &Payout) -> PayoutFacts {
    PayoutFacts {
        payout_id: po.id.clone(),
        amount: po.amount,
        period: po.period.as_deref().and_then(|p| p.parse().ok()),
        arrival_date: po.arrival_date,
        failure: po.failure().map(str::to_string),
        destination: po.destination.clone(),
    }
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

/// A message as it is sent: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl MailContent {
    pub fn render(self) -> RenderedMail {
        RenderedMail {
            text: TextMail { content: &self }
                .render()
                .expect("the text mail template renders"),
            html: HtmlMail { content: &self }
                .render()
                .expect("the HTML mail template renders"),
            subject: self.subject,
        }
    }
}

/// What a landlord message says, worded from its facts; a message rendered
/// when queued is the error, as it was rendered.
fn worded(
    kind: MailKind,
    message: &MailMessage,
    timezone: &TimeZone,
) -> Result<MailContent, RenderedMail> {
    match message {
        MailMessage::Request { facts, greet } => Ok(wording::request_mail(
            facts,
            kind,
            greet.as_deref(),
            timezone,
        )),
        MailMessage::Payout { facts, greet } => Ok(wording::payout_mail(
            facts,
            kind,
            greet.as_deref(),
            timezone,
        )),
        MailMessage::Rendered {
            subject,
            text,
            html,
        } => Err(RenderedMail {
            subject: subject.clone(),
            text: text.clone(),
            html: html.clone(),
        }),
    }
}

/// What a queued message says (pure): worded and rendered when it is sent,
/// dates in `timezone`.
pub fn render(kind: MailKind, message: &MailMessage, timezone: &TimeZone) -> RenderedMail {
    worded(kind, message, timezone).map_or_else(|rendered| rendered, MailContent::render)
}

/// A queued mail's subject, as `outbox list` and the report show it.
pub fn outbox_subject(row: &OutboxRow, timezone: &TimeZone) -> String {
    match &row.mail {
        Ok((_, MailMessage::Rendered { subject, .. })) => subject.clone(),
        Ok((kind, message)) => worded(*kind, message, timezone)
            .map_or_else(|rendered| rendered.subject, |content| content.subject),
        Err(error) => format!("({error})"),
    }
}

/// The mails of one message: to the landlord (with an address and `notify`),
/// and for failures to operations too. One per recipient; `message` gives
/// the message for whom its greeting names (operations: nobody).
pub fn drafts(
    kind: MailKind,
    landlord: Option<&LandlordContact>,
    policy: &MailPolicy,
    message: impl Fn(Option<String>) -> MailMessage,
) -> Vec<MailDraft> {
    let mut drafts = Vec::new();
    if let Some(contact) = landlord
        && contact.notify
        && let Some(email) = &contact.email
    {
        drafts.push(MailDraft {
            kind,
            recipient: email.clone(),
            message: message(contact.name.clone()),
        });
    }
    if kind.copies_operations() {
        for address in &policy.report_to {
            if !drafts.iter().any(|d| d.recipient == *address) {
                drafts.push(MailDraft {
                    kind,
                    recipient: address.clone(),
                    message: message(None),
                });
            }
        }
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::wording::{payout_mail, request_mail};
    use super::*;
    use crate::casapay::event;
    use crate::domain::{Content, LandlordId, Object, PaymentRequest, Period, Version};

    fn policy() -> MailPolicy {
        MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: TimeZone::get("Europe/Paris").unwrap(),
        }
    }

    fn contact(notify: bool, email: Option<&str>) -> LandlordContact {
        LandlordContact {
            landlord_id: LandlordId::parse("ll_1").unwrap(),
            name: Some("Ana".into()),
            email: email.map(str::to_string),
            notify,
        }
    }

    fn object(kind: &str, object: &str) -> Object {
        let body = format!(
            r#"{{"id":"evt_1","type":"{kind}","created":1000,"data":{{"object":{object}}}}}"#
        );
        match event::parse(body.as_bytes()).unwrap().content {
            Content::Object(object) => *object,
            other => panic!("{other:?}"),
        }
    }

    fn stored(request: PaymentRequest, retrying_event: bool) -> StoredRequest {
        StoredRequest {
            version: Version {
                created: 1000,
                rank: request.status.rank(),
            },
            request,
            set_by_retrying_event: retrying_event,
        }
    }

    fn request(object_json: &str) -> PaymentRequest {
        match object("payment_request.succeeded", object_json) {
            Object::PaymentRequest(pr) => pr,
            other => panic!("{other:?}"),
        }
    }

    fn payout(object_json: &str) -> Payout {
        match object("payout.paid", object_json) {
            Object::Payout(po) => po,
            other => panic!("{other:?}"),
        }
    }

    const SUCCEEDED: &str = r#"{"id":"preq_1","amount":120000,"currency":"eur","status":"succeeded","metadata":{"property_id":"prop_1","period":"2025-03"}}"#;
    const RETRYING: &str = r#"{"id":"preq_1","amount":95000,"currency":"eur","status":"processing","attempts":1,"failure_reason":"insufficient_funds","metadata":{"property_id":"prop_1","period":"2025-03"}}"#;

    fn march() -> Option<(String, Period)> {
        Some(("12 Oak St".into(), "2025-03".parse().unwrap()))
    }

    fn rendered(facts: &RequestFacts, kind: MailKind, to: &LandlordContact) -> RenderedMail {
        request_mail(facts, kind, to.name.as_deref(), &policy().timezone).render()
    }

    /// The facts of a request, with the line and retry date given.
    fn facts_of(
        pr: &PaymentRequest,
        line: Option<(String, Period)>,
        next_retry: Option<(i64, bool)>,
    ) -> RequestFacts {
        RequestFacts {
            line,
            next_retry,
            ..request_facts(&stored(pr.clone(), false), None)
        }
    }

    #[test]
    fn each_state_announces_one_message_keyed_by_object_and_state() {
        let succeeded = stored(request(SUCCEEDED), false);
        assert_eq!(
            intent_for(Reached::Request(&succeeded)),
            Some(MailIntent {
                kind: MailKind::RentReceived,
                cause: "preq_1:succeeded".into()
            })
        );
        let retrying = stored(request(RETRYING), true);
        assert_eq!(
            intent_for(Reached::Request(&retrying)).map(|i| i.cause),
            Some("preq_1:retrying:1".into()),
            "once per attempt"
        );
        let processing = stored(request(RETRYING), false);
        assert_eq!(
            intent_for(Reached::Request(&processing)),
            None,
            "processing without a failed attempt announces nothing"
        );
        let paid = payout(r#"{"id":"po_1","amount":100,"currency":"eur","status":"paid"}"#);
        assert_eq!(
            intent_for(Reached::Payout(&paid)).map(|i| (i.kind, i.cause)),
            Some((MailKind::PayoutPaid, "po_1:paid".into()))
        );
    }

    #[test]
    fn landlords_with_an_address_and_notify_get_it_and_operations_hear_of_failures() {
        let words = |greet: Option<String>| MailMessage::Rendered {
            subject: "s".into(),
            text: greet.map_or("Hello,".into(), |name| format!("Hello {name},")),
            html: String::new(),
        };
        let to = |drafts: Vec<MailDraft>| -> Vec<String> {
            drafts.into_iter().map(|d| d.recipient).collect()
        };
        let ana = contact(true, Some("ana@example.com"));
        assert_eq!(
            to(drafts(MailKind::RentReceived, Some(&ana), &policy(), words)),
            ["ana@example.com"]
        );
        assert!(
            drafts(
                MailKind::RentReceived,
                Some(&contact(false, Some("a@example.com"))),
                &policy(),
                words
            )
            .is_empty()
        );
        assert!(drafts(MailKind::RentReceived, None, &policy(), words).is_empty());
        assert_eq!(
            to(drafts(
                MailKind::CollectionFailed,
                Some(&contact(false, Some("a@example.com"))),
                &policy(),
                words
            )),
            ["ops@example.com"]
        );
        let both = drafts(MailKind::PayoutFailed, Some(&ana), &policy(), words);
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].message, words(Some("Ana".into())));
        assert_eq!(
            both[1].message,
            words(None),
            "operations get no personal greeting"
        );
    }

    #[test]
    fn rent_received_names_the_matched_line_and_escapes_html() {
        let pr = request(SUCCEEDED);
        let facts = facts_of(
            &pr,
            Some((
                "<script>alert('x')</script> & co".into(),
                "2025-03".parse().unwrap(),
            )),
            None,
        );
        let draft = rendered(
            &facts,
            MailKind::RentReceived,
            &contact(true, Some("a@example.com")),
        );
        assert_eq!(
            draft.subject,
            "Rent received for <script>alert('x')</script> & co — March 2025: €1,200.00"
        );
        assert!(draft.text.contains("Hello Ana,"));
        assert!(!draft.html.contains("<script>"), "{}", draft.html);
        assert!(
            draft
                .html
                .contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co")
        );
    }

    #[test]
    fn retry_mails_give_the_attempt_and_the_date_in_the_zone_or_a_sentence_without_it() {
        let pr = request(RETRYING);
        // 2025-03-24 23:30 UTC is already the 25th in Paris.
        let facts = facts_of(&pr, march(), Some((1_742_859_000, false)));
        let draft = rendered(
            &facts,
            MailKind::CollectionRetrying,
            &contact(true, Some("a@example.com")),
        );
        assert_eq!(
            draft.subject,
            "Rent collection for 12 Oak St — March 2025 failed; retrying 25 March 2025"
        );
        assert!(draft.text.contains("insufficient_funds"));
        assert!(draft.text.contains("attempt 1 of 3"));
        let estimated = RequestFacts {
            next_retry: Some((1_742_859_000, true)),
            ..facts.clone()
        };
        assert!(
            rendered(
                &estimated,
                MailKind::CollectionRetrying,
                &contact(true, None)
            )
            .text
            .contains("around 25 March 2025")
        );
        let unknown = facts_of(&pr, march(), None);
        let draft = rendered(&unknown, MailKind::CollectionRetrying, &contact(true, None));
        assert!(!draft.text.contains("soon"), "{}", draft.text);
        assert!(
            draft.subject.ends_with("failed; CasaPay will retry"),
            "{}",
            draft.subject
        );
    }

    #[test]
    fn an_unmatched_request_is_named_by_its_id_never_as_no_period() {
        let mut pr = request(SUCCEEDED);
        pr.failure_reason = None;
        let facts = facts_of(&pr, None, None);
        let draft = rendered(&facts, MailKind::CollectionFailed, &contact(true, None));
        assert_eq!(
            draft.subject,
            "Rent collection failed for payment request preq_1: €1,200.00"
        );
        assert!(!draft.text.contains("(no"), "{}", draft.text);
        assert!(!draft.text.contains("no reason given"), "{}", draft.text);
    }

    #[test]
    fn payouts_show_amount_period_arrival_reason_and_next_step() {
        let paid = payout(
            r#"{"id":"po_1","amount":1150000,"currency":"gbp","status":"paid","arrival_date":1742860800,"metadata":{"landlord_id":"ll_1","period":"2025-03"}}"#,
        );
        let draft = payout_mail(
            &payout_facts(&paid),
            MailKind::PayoutPaid,
            None,
            &policy().timezone,
        )
        .render();
        assert_eq!(draft.subject, "Payout paid: £11,500.00 for March 2025");
        assert!(draft.text.contains("25 March 2025"));
        // The quickstart's payout: no metadata, a failure_reason.
        let failed = payout(
            r#"{"id":"po_2","amount":1200,"currency":"jpy","status":"failed","destination":"ba_1","failure_reason":"account_closed"}"#,
        );
        let draft = payout_mail(
            &payout_facts(&failed),
            MailKind::PayoutFailed,
            None,
            &policy().timezone,
        )
        .render();
        assert_eq!(draft.subject, "Payout failed: ¥1,200");
        assert!(
            draft.text.contains("could not be paid: account_closed."),
            "{}",
            draft.text
        );
        assert!(draft.text.contains("Next step"));
        assert!(!draft.text.contains("(no period)"));
    }

    /// A message as version 2 rendered it when queueing (captured from that
    /// version): subject, text, HTML.
    macro_rules! before {
        ($name:literal) => {
            RenderedMail {
                subject: include_str!(concat!("../../tests/fixtures/mail/", $name, ".subject"))
                    .into(),
                text: include_str!(concat!("../../tests/fixtures/mail/", $name, ".txt")).into(),
                html: include_str!(concat!("../../tests/fixtures/mail/", $name, ".html")).into(),
            }
        };
    }

    /// Queued as values, stored as JSON, rendered when sent.
    fn sent(draft: &MailDraft) -> RenderedMail {
        let stored = serde_json::to_string(&draft.message).unwrap();
        render(
            draft.kind,
            &serde_json::from_str(&stored).unwrap(),
            &policy().timezone,
        )
    }

    #[test]
    fn mail_rendered_when_sent_is_what_rendering_when_queued_sent_before() {
        let ana = contact(true, Some("ana@example.com"));
        let request_mail = |kind, facts: RequestFacts, to: Option<&LandlordContact>| {
            drafts(kind, to, &policy(), |greet| MailMessage::Request {
                facts: facts.clone(),
                greet,
            })
        };
        let mut pr = request(SUCCEEDED);
        pr.payment_method_used = Some("sepa_debit".into());
        let line = Some(("12 Oak St <b>".into(), "2025-03".parse().unwrap()));
        let received = request_mail(
            MailKind::RentReceived,
            facts_of(&pr, line, None),
            Some(&ana),
        );
        assert_eq!(sent(&received[0]), before!("rent_received"));

        let retrying = facts_of(&request(RETRYING), march(), Some((1_742_859_000, true)));
        let retrying = request_mail(MailKind::CollectionRetrying, retrying, Some(&ana));
        assert_eq!(sent(&retrying[0]), before!("collection_retrying"));

        let failed = request_mail(
            MailKind::CollectionFailed,
            facts_of(&request(RETRYING), None, None),
            None,
        );
        assert_eq!(failed[0].recipient, "ops@example.com");
        assert_eq!(sent(&failed[0]), before!("collection_failed_operations"));

        let payout_mail = |kind, po: &Payout| {
            drafts(kind, Some(&ana), &policy(), |greet| MailMessage::Payout {
                facts: payout_facts(po),
                greet,
            })
        };
        let paid = payout(
            r#"{"id":"po_1","amount":1150000,"currency":"gbp","status":"paid","destination":"ba_9","arrival_date":1742860800,"metadata":{"landlord_id":"ll_1","period":"2025-03"}}"#,
        );
        assert_eq!(
            sent(&payout_mail(MailKind::PayoutPaid, &paid)[0]),
            before!("payout_paid")
        );
        let failed = payout(
            r#"{"id":"po_2","amount":1200,"currency":"jpy","status":"failed","destination":"ba_1","failure_message":"closed & gone"}"#,
        );
        assert_eq!(
            sent(&payout_mail(MailKind::PayoutFailed, &failed)[0]),
            before!("payout_failed")
        );
    }
}
