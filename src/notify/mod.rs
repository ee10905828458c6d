//! E-mail to landlords and operations (SPEC §7): which message an object
//! state announces and the cause that sends it once (pure), what it says
//! ([`wording`]), how it renders (templates), and its delivery (worker).

pub mod delivery;
pub mod wording;

use askama::Template;
use jiff::tz::TimeZone;

use crate::domain::{
    LandlordContact, MailDraft, MailKind, PaymentRequestStatus, Payout, PayoutStatus, StoredRequest,
};
use crate::recon::rules;

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

/// The mails of one message: to the landlord (with an address and `notify`),
/// and for failures to operations too. One per recipient; `content` words it
/// for a recipient (operations get no personal greeting).
pub fn drafts(
    kind: MailKind,
    landlord: Option<&LandlordContact>,
    policy: &MailPolicy,
    content: impl Fn(Option<&LandlordContact>) -> MailContent,
) -> Vec<MailDraft> {
    let mut drafts = Vec::new();
    if let Some(contact) = landlord
        && contact.notify
        && let Some(email) = &contact.email
    {
        drafts.push(content(Some(contact)).render(kind, email));
    }
    if kind.copies_operations() {
        let copy = content(None);
        for address in &policy.report_to {
            if !drafts.iter().any(|d| d.recipient == *address) {
                drafts.push(copy.render(kind, address));
            }
        }
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::wording::{PayoutFacts, RequestFacts, payout_mail, request_mail};
    use super::*;
    use crate::casapay::event;
    use crate::domain::{Content, Object, PaymentRequest, Period, Version};

    fn policy() -> MailPolicy {
        MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: TimeZone::get("Europe/Paris").unwrap(),
        }
    }

    fn contact(notify: bool, email: Option<&str>) -> LandlordContact {
        LandlordContact {
            landlord_id: "ll_1".into(),
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

    fn rendered(facts: &RequestFacts<'_>, kind: MailKind, to: &LandlordContact) -> MailDraft {
        request_mail(facts, kind, Some(to), &policy().timezone).render(kind, "a@example.com")
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
        let words = |to: Option<&LandlordContact>| MailContent {
            subject: "s".into(),
            greeting: to.map_or("Hello,".into(), |_| "Hello Ana,".into()),
            paragraphs: vec![],
            facts: vec![],
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
        assert!(
            both[1].text.starts_with("Hello,"),
            "operations get no personal greeting"
        );
    }

    #[test]
    fn rent_received_names_the_matched_line_and_escapes_html() {
        let pr = request(SUCCEEDED);
        let facts = RequestFacts {
            request: &pr,
            line: Some((
                "<script>alert('x')</script> & co".into(),
                "2025-03".parse().unwrap(),
            )),
            next_retry: None,
        };
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
        let facts = RequestFacts {
            request: &pr,
            line: march(),
            next_retry: Some((1_742_859_000, false)),
        };
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
            ..facts
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
        let unknown = RequestFacts {
            request: &pr,
            line: march(),
            next_retry: None,
        };
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
        let facts = RequestFacts {
            request: &pr,
            line: None,
            next_retry: None,
        };
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
        let facts = PayoutFacts {
            payout: &paid,
            period: Some("2025-03".parse().unwrap()),
        };
        let draft = payout_mail(&facts, MailKind::PayoutPaid, None, &policy().timezone)
            .render(MailKind::PayoutPaid, "a@example.com");
        assert_eq!(draft.subject, "Payout paid: £11,500.00 for March 2025");
        assert!(draft.text.contains("25 March 2025"));
        // The quickstart's payout: no metadata, a failure_reason.
        let failed = payout(
            r#"{"id":"po_2","amount":1200,"currency":"jpy","status":"failed","destination":"ba_1","failure_reason":"account_closed"}"#,
        );
        let facts = PayoutFacts {
            payout: &failed,
            period: None,
        };
        let draft = payout_mail(&facts, MailKind::PayoutFailed, None, &policy().timezone)
            .render(MailKind::PayoutFailed, "a@example.com");
        assert_eq!(draft.subject, "Payout failed: ¥1,200");
        assert!(
            draft.text.contains("could not be paid: account_closed."),
            "{}",
            draft.text
        );
        assert!(draft.text.contains("Next step"));
        assert!(!draft.text.contains("(no period)"));
    }
}
