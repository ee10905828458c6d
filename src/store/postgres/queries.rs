//! The storage boundary's operations in PostgreSQL's SQL: the twin of
//! `sqlite/`, statement for statement, with `FOR UPDATE SKIP LOCKED` and
//! advisory locks where several instances meet.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use postgres::types::ToSql;
use postgres::{Portal, Row, Statement};

use super::PgStore;
use crate::domain::{
    Event, EventState, LandlordContact, LandlordId, MailDraft, Object, Period, PropertyRent,
    StatusRank, StoredPayout, Version,
};
use crate::rent_roll::RentRoll;
use crate::store::period::{self, PeriodWindow};
use crate::store::rows::{self, ExpectedRow, PayoutRow, PlacedRequestRow, RequestRow};
use crate::store::{
    ClaimedMail, EventCursor, EventFilter, EventPage, ObjectState, OutboxRow, PeriodItem,
    QuarantinedEvent, RecordedException, Result, SetBy, Storage, StoredEvent, SyncRun,
};

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<'a> PgStore<'a> {
    /// `sql` prepared on this connection, once.
    fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.borrow_mut().prepare(sql)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
    fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.tx.borrow_mut().query(&statement, params)?)
    }
    fn row(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.tx.borrow_mut().query_opt(&statement, params)?)
    }
    /// The rows of `sql`, fetched [`BATCH`] at a time through a portal: a
    /// large result is never held whole.
    fn batches<'s>(&'s self, sql: &str, params: &Params<'_>) -> Result<Batches<'s, 'a>> {
        let statement = self.statement(sql)?;
        let portal = self.tx.borrow_mut().bind(&statement, params)?;
        Ok(Batches {
            store: self,
            portal,
            fetched: Vec::new().into_iter(),
            done: false,
        })
    }
    fn exec(&self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.tx.borrow_mut().execute(&statement, params)?)
    }
    /// Serialises this transaction with any other touching `object_id` (on
    /// any instance) until it ends: the order rule reads, then writes.
    fn lock_object(&self, object_id: &str) -> Result<()> {
        self.exec(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&object_id],
        )?;
        Ok(())
    }
}

/// Rows fetched per round trip by [`PgStore::batches`].
const BATCH: i32 = 1_000;

struct Batches<'s, 'a> {
    store: &'s PgStore<'a>,
    portal: Portal,
    fetched: std::vec::IntoIter<Row>,
    done: bool,
}

impl Iterator for Batches<'_, '_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.fetched.next() {
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            match self.store.tx.borrow_mut().query_portal(&self.portal, BATCH) {
                Ok(rows) => {
                    self.done = rows.len() < BATCH as usize;
                    self.fetched = rows.into_iter();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error.into()));
                }
            }
        }
    }
}

fn version(row: &Row, created: usize, rank: usize) -> Result<Version> {
    let value: i64 = row.try_get(rank)?;
    Ok(Version {
        created: row.try_get(created)?,
        rank: StatusRank(u8::try_from(value).unwrap_or(u8::MAX)),
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn attempts(row: &Row, index: usize) -> Result<u32> {
    let value: i64 = row.try_get(index)?;
    Ok(u32::try_from(value).unwrap_or(u32::MAX))
}

const REQUEST_COLUMNS: &str =
    "id, payment_agreement, amount, currency, status, failure_reason, attempts,
    next_retry_at, payment_method_used, property_id, period, created, event_created, status_rank,
    last_event_type";

fn request_row(row: &Row) -> Result<RequestRow> {
    Ok(RequestRow {
        id: row.try_get(0)?,
        payment_agreement: row.try_get(1)?,
        amount: row.try_get(2)?,
        currency: row.try_get(3)?,
        status: row.try_get(4)?,
        failure_reason: row.try_get(5)?,
        attempts: row.try_get(6)?,
        next_retry_at: row.try_get(7)?,
        payment_method_used: row.try_get(8)?,
        property_id: row.try_get(9)?,
        period: row.try_get(10)?,
        created: row.try_get(11)?,
        event_created: row.try_get(12)?,
        status_rank: row.try_get(13)?,
        last_event_type: row.try_get(14)?,
    })
}

/// The period's lines ($1), a landlord's only if $2 is set, in byte order as SQLite's.
const LINES: &str =
    "SELECT e.property_id, e.landlord_id, e.amount, e.currency, e.due_date, e.commission_bps,
        p.payment_agreement, p.name
    FROM expected_rent e JOIN properties p ON p.id = e.property_id
    WHERE e.period = $1 AND ($2::text IS NULL OR e.landlord_id = $2)
    ORDER BY e.landlord_id COLLATE \"C\", e.property_id COLLATE \"C\"";

fn expected_row(row: &Row) -> Result<ExpectedRow> {
    Ok(ExpectedRow {
        property_id: row.try_get(0)?,
        landlord_id: row.try_get(1)?,
        amount: row.try_get(2)?,
        currency: row.try_get(3)?,
        due_date: row.try_get(4)?,
        commission_bps: row.try_get(5)?,
        payment_agreement: row.try_get(6)?,
        property_name: row.try_get(7)?,
    })
}

/// The twin of SQLite's (`sqlite/reconciliation.rs`), sorted as [`LINES`].
fn placed_requests_sql() -> String {
    format!(
        "WITH wanted AS (
            SELECT {REQUEST_COLUMNS} FROM payment_requests WHERE period = $1
            UNION ALL
            SELECT {REQUEST_COLUMNS} FROM payment_requests
            WHERE period IS NULL AND created >= $2 AND created < $3
        ), placed AS MATERIALIZED (
            SELECT wanted.*, COALESCE(
                (SELECT p.id FROM properties p WHERE p.id = wanted.property_id),
                (SELECT p.id FROM properties p WHERE p.payment_agreement = wanted.payment_agreement LIMIT 1)
            ) AS placed_at
            FROM wanted
        )
        SELECT {placed}, placed_at, e.landlord_id,
            CASE WHEN placed.period IS NULL AND placed_at IS NOT NULL THEN
                (SELECT string_agg(d.period || ' ' || d.due_date, ',') FROM expected_rent d
                 WHERE d.property_id = placed.placed_at AND d.period BETWEEN $4 AND $5)
            END
        FROM placed LEFT JOIN expected_rent e ON e.property_id = placed.placed_at AND e.period = $1
        WHERE $6::text IS NULL OR e.landlord_id = $6
        ORDER BY e.landlord_id IS NULL, e.landlord_id COLLATE \"C\",
            (CASE WHEN e.landlord_id IS NULL THEN placed.id ELSE placed_at END) COLLATE \"C\"",
        placed = period::qualified("placed", REQUEST_COLUMNS)
    )
}

const PAYOUT_COLUMNS: &str =
    "id, amount, currency, status, destination, arrival_date, failure_reason,
    failure_code, failure_message, landlord_id, period, created, event_created, status_rank";

fn payout_row(row: &Row) -> Result<PayoutRow> {
    Ok(PayoutRow {
        id: row.try_get(0)?,
        amount: row.try_get(1)?,
        currency: row.try_get(2)?,
        status: row.try_get(3)?,
        destination: row.try_get(4)?,
        arrival_date: row.try_get(5)?,
        failure_reason: row.try_get(6)?,
        failure_code: row.try_get(7)?,
        failure_message: row.try_get(8)?,
        landlord_id: row.try_get(9)?,
        period: row.try_get(10)?,
        created: row.try_get(11)?,
        event_created: row.try_get(12)?,
        status_rank: row.try_get(13)?,
    })
}

fn property(row: &Row, first: usize) -> Result<PropertyRent> {
    Ok(PropertyRent {
        property_id: row.try_get(first)?,
        landlord_id: row.try_get(first + 1)?,
        property_name: row.try_get(first + 2)?,
        due_dates: Vec::new(),
    })
}

impl Storage for PgStore<'_> {
    fn insert_event(&self, event: &Event, state: &EventState, received_at_ms: i64) -> Result<bool> {
        let inserted = self.exec(
            "INSERT INTO events (id, type, created, livemode, object_id, received_at, body, state, reason, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO NOTHING",
            &[
                &event.id,
                &event.kind,
                &event.created.unwrap_or(received_at_ms.div_euclid(1000)),
                &event.is_live(),
                &event.object_id,
                &received_at_ms,
                &event.body,
                &state.as_str(),
                &state.reason(),
                &rows::source_of(event),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn set_event_state(&self, id: &str, state: &EventState) -> Result<()> {
        self.exec(
            "UPDATE events SET state = $2, reason = $3 WHERE id = $1",
            &[&id, &state.as_str(), &state.reason()],
        )?;
        Ok(())
    }

    fn event_cursor(&self, id: &str) -> Result<Option<EventCursor>> {
        self.row("SELECT created, seq FROM events WHERE id = $1", &[&id])?
            .map(|row| {
                Ok(EventCursor {
                    created: row.try_get(0)?,
                    seq: row.try_get(1)?,
                })
            })
            .transpose()
    }

    fn list_events(
        &self,
        filter: EventFilter<'_>,
        limit_to: usize,
        after: Option<EventCursor>,
    ) -> Result<EventPage> {
        let (created, seq) = after.map_or((i64::MAX, i64::MAX), |c| (c.created, c.seq));
        let rows = self.rows(
            "SELECT id, body, state, reason FROM events
             WHERE ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR state = $2)
               AND (created, seq) < ($3, $4)
             ORDER BY created DESC, seq DESC
             LIMIT $5",
            &[
                &filter.kind,
                &filter.state,
                &created,
                &seq,
                &(limit(limit_to) + 1),
            ],
        )?;
        let mut events = rows
            .iter()
            .map(|row| {
                Ok(StoredEvent {
                    id: row.try_get(0)?,
                    body: row.try_get(1)?,
                    state: row.try_get(2)?,
                    reason: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let has_more = events.len() > limit_to;
        events.truncate(limit_to);
        Ok(EventPage { events, has_more })
    }

    fn events_after(
        &self,
        after_seq: i64,
        quarantined_only: bool,
        limit_to: usize,
    ) -> Result<Vec<(i64, String)>> {
        self.rows(
            "SELECT seq, body FROM events
             WHERE seq > $1 AND (NOT $2 OR state = 'quarantined')
             ORDER BY seq LIMIT $3",
            &[&after_seq, &quarantined_only, &limit(limit_to)],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }

    fn quarantined_events(&self, limit_to: usize) -> Result<Vec<QuarantinedEvent>> {
        self.rows(
            "SELECT id, type, reason, received_at FROM events WHERE state = 'quarantined'
             ORDER BY created DESC, seq DESC LIMIT $1",
            &[&limit(limit_to)],
        )?
        .iter()
        .map(|row| {
            Ok(QuarantinedEvent {
                id: row.try_get(0)?,
                kind: row.try_get(1)?,
                reason: row.try_get(2)?,
                received_at_ms: row.try_get(3)?,
            })
        })
        .collect()
    }

    fn count_quarantined(&self) -> Result<i64> {
        let row = self.row(
            "SELECT count(*) FROM events WHERE state = 'quarantined'",
            &[],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    fn count_events_received(&self, from_ms: i64, until_ms: i64) -> Result<Vec<(String, i64)>> {
        self.rows(
            "SELECT type, count(*) FROM events WHERE received_at >= $1 AND received_at < $2
             GROUP BY type ORDER BY type",
            &[&from_ms, &until_ms],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }

    fn object_version(&self, object: &Object) -> Result<Option<Version>> {
        self.lock_object(object.id())?;
        let sql = match object {
            Object::PaymentRequest(_) => {
                "SELECT event_created, status_rank FROM payment_requests WHERE id = $1"
            }
            Object::Payout(_) => "SELECT event_created, status_rank FROM payouts WHERE id = $1",
        };
        self.row(sql, &[&object.id()])?
            .map(|row| version(&row, 0, 1))
            .transpose()
    }

    fn save_object(&self, object: &Object, set_by: SetBy<'_>) -> Result<()> {
        let (created, rank) = (set_by.version.created, i64::from(set_by.version.rank.0));
        match object {
            Object::PaymentRequest(pr) => self.exec(
                "INSERT INTO payment_requests (id, payment_agreement, amount, currency, status, failure_reason,
                     attempts, next_retry_at, property_id, period, created, event_created, status_rank,
                     last_event_id, payment_method_used, last_event_type)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT (id) DO UPDATE SET
                     payment_agreement = excluded.payment_agreement, amount = excluded.amount,
                     currency = excluded.currency, status = excluded.status,
                     failure_reason = excluded.failure_reason, attempts = excluded.attempts,
                     next_retry_at = excluded.next_retry_at, property_id = excluded.property_id,
                     period = excluded.period, created = excluded.created,
                     event_created = excluded.event_created, status_rank = excluded.status_rank,
                     last_event_id = excluded.last_event_id,
                     payment_method_used = excluded.payment_method_used,
                     last_event_type = excluded.last_event_type",
                &[
                    &pr.id,
                    &pr.payment_agreement,
                    &pr.amount.minor(),
                    &pr.amount.currency().code(),
                    &pr.status.as_str(),
                    &pr.failure_reason,
                    &pr.attempts,
                    &pr.next_retry_at,
                    &pr.property_id,
                    &pr.period,
                    &pr.created,
                    &created,
                    &rank,
                    &set_by.event_id,
                    &pr.payment_method_used,
                    &set_by.event_type,
                ],
            )?,
            Object::Payout(po) => self.exec(
                "INSERT INTO payouts (id, amount, currency, status, destination, arrival_date, failure_code,
                     failure_message, landlord_id, period, created, event_created, status_rank, last_event_id,
                     failure_reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (id) DO UPDATE SET
                     amount = excluded.amount, currency = excluded.currency, status = excluded.status,
                     destination = excluded.destination, arrival_date = excluded.arrival_date,
                     failure_code = excluded.failure_code, failure_message = excluded.failure_message,
                     landlord_id = excluded.landlord_id, period = excluded.period, created = excluded.created,
                     event_created = excluded.event_created, status_rank = excluded.status_rank,
                     last_event_id = excluded.last_event_id, failure_reason = excluded.failure_reason",
                &[
                    &po.id,
                    &po.amount.minor(),
                    &po.amount.currency().code(),
                    &po.status.as_str(),
                    &po.destination,
                    &po.arrival_date,
                    &po.failure_code,
                    &po.failure_message,
                    &po.landlord_id,
                    &po.period,
                    &po.created,
                    &created,
                    &rank,
                    &set_by.event_id,
                    &po.failure_reason,
                ],
            )?,
        };
        Ok(())
    }

    fn object_state(&self, object: &Object) -> Result<Option<(ObjectState, Version)>> {
        self.lock_object(object.id())?;
        let sql = match object {
            Object::PaymentRequest(_) => {
                "SELECT status, attempts, next_retry_at, event_created, status_rank
                 FROM payment_requests WHERE id = $1"
            }
            Object::Payout(_) => {
                "SELECT status, NULL::bigint, NULL::bigint, event_created, status_rank
                 FROM payouts WHERE id = $1"
            }
        };
        self.row(sql, &[&object.id()])?
            .map(|row| {
                Ok((
                    ObjectState {
                        status: row.try_get(0)?,
                        attempts: row.try_get(1)?,
                        next_retry_at: row.try_get(2)?,
                    },
                    version(&row, 3, 4)?,
                ))
            })
            .transpose()
    }

    fn clear_objects(&self) -> Result<()> {
        self.tx
            .borrow_mut()
            .batch_execute("DELETE FROM payment_requests; DELETE FROM payouts;")?;
        Ok(())
    }

    fn write_rent_roll(&self, roll: &RentRoll) -> Result<()> {
        for l in &roll.landlords {
            self.exec(
                "INSERT INTO landlords (id, name, email, notify, bank_account)
                 VALUES ($1, $2, $3, coalesce($4::boolean, TRUE), $5)
                 ON CONFLICT (id) DO UPDATE SET
                     name = coalesce(excluded.name, landlords.name),
                     email = coalesce(excluded.email, landlords.email),
                     notify = coalesce($4::boolean, landlords.notify),
                     bank_account = coalesce(excluded.bank_account, landlords.bank_account)",
                &[&l.id, &l.name, &l.email, &l.notify, &l.bank_account],
            )?;
        }
        for p in &roll.properties {
            self.exec(
                "INSERT INTO properties (id, landlord_id, name, payment_agreement) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET
                     landlord_id = excluded.landlord_id,
                     name = coalesce(excluded.name, properties.name),
                     payment_agreement = coalesce(excluded.payment_agreement, properties.payment_agreement)",
                &[&p.id, &p.landlord_id, &p.name, &p.payment_agreement],
            )?;
        }
        for l in &roll.lines {
            self.exec(
                "INSERT INTO expected_rent (property_id, period, landlord_id, amount, currency, due_date, commission_bps)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (property_id, period) DO UPDATE SET
                     landlord_id = excluded.landlord_id, amount = excluded.amount,
                     currency = excluded.currency, due_date = excluded.due_date,
                     commission_bps = excluded.commission_bps",
                &[
                    &l.property_id,
                    &l.period.to_string(),
                    &l.landlord_id,
                    &l.amount.minor(),
                    &l.amount.currency().code(),
                    &l.due_date.to_string(),
                    &i64::from(l.commission_bps),
                ],
            )?;
        }
        Ok(())
    }

    fn agreement_holders(&self, agreement: &str, except_property: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT id FROM properties WHERE payment_agreement = $1 AND id != $2",
            &[&agreement, &except_property],
        )?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    fn property_candidates(
        &self,
        property_id: Option<&str>,
        agreement: Option<&str>,
    ) -> Result<(Option<PropertyRent>, Option<PropertyRent>)> {
        let rows = self.rows(
            "SELECT 0::bigint, id, landlord_id, name FROM properties WHERE id = $1
             UNION ALL
             SELECT 1::bigint, id, landlord_id, name FROM properties WHERE payment_agreement = $2",
            &[&property_id, &agreement],
        )?;
        let (mut by_id, mut by_agreement) = (None, None);
        for row in &rows {
            let which: i64 = row.try_get(0)?;
            let found = Some(property(row, 1)?);
            if which == 0 {
                by_id = found;
            } else {
                by_agreement = found;
            }
        }
        Ok((by_id, by_agreement))
    }

    fn due_dates(
        &self,
        property_id: &str,
        within: Option<(Period, Period)>,
    ) -> Result<Vec<(Period, Date)>> {
        let (from, until) = within.map_or((String::new(), "9999-99".to_string()), |(a, b)| {
            (a.to_string(), b.to_string())
        });
        self.rows(
            "SELECT period, due_date FROM expected_rent
             WHERE property_id = $1 AND period >= $2 AND period <= $3 ORDER BY period",
            &[&property_id, &from, &until],
        )?
        .iter()
        .map(|row| {
            let (period, due): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            Ok((rows::period(&period)?, rows::date(&due)?))
        })
        .collect()
    }

    fn landlord_by_bank_account(&self, bank_account: &str) -> Result<Option<LandlordId>> {
        self.row(
            "SELECT id FROM landlords WHERE bank_account = $1",
            &[&bank_account],
        )?
        .map(|row| Ok(row.try_get(0)?))
        .transpose()
    }

    fn landlord_contact(&self, landlord_id: &str) -> Result<Option<LandlordContact>> {
        self.row(
            "SELECT id, name, email, notify FROM landlords WHERE id = $1",
            &[&landlord_id],
        )?
        .map(|row| {
            Ok(LandlordContact {
                landlord_id: row.try_get(0)?,
                name: row.try_get(1)?,
                email: row.try_get(2)?,
                notify: row.try_get(3)?,
            })
        })
        .transpose()
    }

    fn learn_bank_account(&self, landlord_id: &str, bank_account: &str) -> Result<bool> {
        let learned = self.exec(
            "UPDATE landlords SET bank_account = $2
             WHERE id = $1 AND bank_account IS NULL
               AND NOT EXISTS (SELECT 1 FROM landlords WHERE bank_account = $2)",
            &[&landlord_id, &bank_account],
        )?;
        Ok(learned == 1)
    }

    fn visit_period(
        &self,
        period: Period,
        timezone: &TimeZone,
        landlord: Option<&str>,
        visit: &mut dyn FnMut(PeriodItem) -> Result<()>,
    ) -> Result<()> {
        let window = PeriodWindow::new(period, timezone);
        let month = period.to_string();
        let lines = self
            .batches(LINES, &[&month, &landlord])?
            .map(|row| expected_row(&row?)?.decode(period));
        let (from, until) = window.undated_created;
        let (first, last) = (
            window.due_months.0.to_string(),
            window.due_months.1.to_string(),
        );
        let requests = self
            .batches(
                &placed_requests_sql(),
                &[&month, &from, &until, &first, &last, &landlord],
            )?
            .map(|row| {
                let row = row?;
                PlacedRequestRow {
                    request: request_row(&row)?,
                    property: row.try_get(15)?,
                    line_landlord: row.try_get(16)?,
                    due_dates: row.try_get(17)?,
                }
                .decode()
            });
        period::merge(lines, requests, visit)
    }

    fn payouts_of_period(
        &self,
        period: Period,
        (from, until): (i64, i64),
    ) -> Result<Vec<StoredPayout>> {
        self.rows(
            &format!(
                "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE period = $1
                 UNION ALL
                 SELECT {PAYOUT_COLUMNS} FROM payouts
                 WHERE period IS NULL AND created >= $2 AND created < $3"
            ),
            &[&period.to_string(), &from, &until],
        )?
        .iter()
        .map(|row| payout_row(row)?.decode())
        .collect()
    }

    fn periods_before(&self, period: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT period FROM expected_rent WHERE period < $1
             UNION SELECT period FROM payment_requests WHERE period < $1
             UNION SELECT period FROM payouts WHERE period < $1
             ORDER BY 1",
            &[&period],
        )?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    fn queue_mail(&self, cause: &str, draft: &MailDraft, now_ms: i64) -> Result<bool> {
        let inserted = self.exec(
            "INSERT INTO outbox (cause, kind, recipient, message, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (cause, recipient) DO NOTHING",
            &[
                &cause,
                &draft.kind.as_str(),
                &draft.recipient,
                &rows::message_json(&draft.message),
                &now_ms,
            ],
        )?;
        Ok(inserted == 1)
    }

    fn claim_due_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit_to: usize,
        cause: Option<&str>,
    ) -> Result<Vec<ClaimedMail>> {
        // SKIP LOCKED: instances claiming at once each take other rows, never wait on each other.
        self.rows(
            "UPDATE outbox SET status = 'sending', next_attempt_at = $2
             WHERE id IN (SELECT id FROM outbox
                          WHERE status IN ('queued', 'sending') AND next_attempt_at <= $1
                            AND ($4::text IS NULL OR cause = $4)
                          ORDER BY next_attempt_at, id LIMIT $3
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, recipient, kind, message, attempts",
            &[&now_ms, &lease_until_ms, &limit(limit_to), &cause],
        )?
        .iter()
        .map(|row| {
            Ok(ClaimedMail {
                id: row.try_get(0)?,
                recipient: row.try_get(1)?,
                mail: rows::mail(row.try_get(2)?, row.try_get(3)?),
                attempts: attempts(row, 4)?,
            })
        })
        .collect()
    }

    /// Releases nothing: other instances may hold claims, which lapse with their lease.
    fn release_claims(&self, _now_ms: i64) -> Result<usize> {
        Ok(0)
    }

    fn mark_mail_sent(&self, id: i64, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
             WHERE id = $1",
            &[&id, &now_ms],
        )?;
        Ok(())
    }

    fn mark_mail_failed(&self, id: i64, error: &str, retry_at_ms: Option<i64>) -> Result<()> {
        self.exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                 status = CASE WHEN $3::bigint IS NULL THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = coalesce($3::bigint, next_attempt_at)
             WHERE id = $1",
            &[&id, &error, &retry_at_ms],
        )?;
        Ok(())
    }

    fn requeue_failed_mail(&self, ids: &[i64], now_ms: i64) -> Result<usize> {
        let sql = "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = $1
                   WHERE status = 'failed' AND ($2::bigint IS NULL OR id = $2)";
        if ids.is_empty() {
            return Ok(self.exec(sql, &[&now_ms, &None::<i64>])? as usize);
        }
        let mut count = 0;
        for id in ids {
            count += self.exec(sql, &[&now_ms, &Some(*id)])? as usize;
        }
        Ok(count)
    }

    fn list_outbox(&self, status: Option<&str>, limit_to: usize) -> Result<Vec<OutboxRow>> {
        self.rows(
            "SELECT id, status, kind, recipient, message, attempts, last_error, cause FROM outbox
             WHERE ($1::text IS NULL AND status != 'sent') OR status = $1
             ORDER BY id LIMIT $2",
            &[&status, &limit(limit_to)],
        )?
        .iter()
        .map(|row| {
            Ok(OutboxRow {
                id: row.try_get(0)?,
                status: row.try_get(1)?,
                kind: row.try_get(2)?,
                recipient: row.try_get(3)?,
                mail: rows::mail(row.try_get(2)?, row.try_get(4)?),
                attempts: attempts(row, 5)?,
                last_error: row.try_get(6)?,
                cause: row.try_get(7)?,
            })
        })
        .collect()
    }

    fn outbox_depth(&self) -> Result<i64> {
        let row = self.row(
            "SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')",
            &[],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    fn unsent_mail(&self, cause: &str) -> Result<i64> {
        let row = self.row(
            "SELECT count(*) FROM outbox WHERE cause = $1 AND status != 'sent'",
            &[&cause],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    fn last_daily_report(&self) -> Result<Option<String>> {
        Ok(self
            .row("SELECT max(date) FROM daily_reports", &[])?
            .map(|row| row.try_get(0))
            .transpose()?
            .flatten())
    }

    fn previous_report_exceptions(
        &self,
        date: &str,
    ) -> Result<Option<(String, Vec<RecordedException>)>> {
        let previous: Option<String> = self
            .row(
                "SELECT max(date) FROM daily_reports WHERE date < $1",
                &[&date],
            )?
            .map(|row| row.try_get(0))
            .transpose()?
            .flatten();
        let Some(previous) = previous else {
            return Ok(None);
        };
        let exceptions = self
            .rows(
                "SELECT key, kind, subject, detail, since FROM report_exceptions WHERE date = $1",
                &[&previous],
            )?
            .iter()
            .map(|row| {
                Ok(RecordedException {
                    key: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    subject: row.try_get(2)?,
                    detail: row.try_get(3)?,
                    since: row.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((previous, exceptions)))
    }

    fn record_daily_report(
        &self,
        date: &str,
        exceptions: &[RecordedException],
        drafts: &[MailDraft],
        now_ms: i64,
    ) -> Result<bool> {
        // Instances recording the same date at once: the second waits on the key, then inserts nothing.
        let inserted = self.exec(
            "INSERT INTO daily_reports (date, created_at, recipients) VALUES ($1, $2, $3)
             ON CONFLICT (date) DO NOTHING",
            &[&date, &now_ms, &limit(drafts.len())],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for e in exceptions {
            self.exec(
                "INSERT INTO report_exceptions (date, key, kind, subject, detail, since)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (date, key) DO NOTHING",
                &[&date, &e.key, &e.kind, &e.subject, &e.detail, &e.since],
            )?;
        }
        let cause = format!("report:{date}");
        for draft in drafts {
            self.queue_mail(&cause, draft, now_ms)?;
        }
        Ok(true)
    }

    fn record_sync_run(&self, run: &SyncRun, started_at_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO sync_runs (id, started_at, finished_at, read, changed, error)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            &[
                &run.id,
                &started_at_ms,
                &run.finished_at_ms,
                &run.read,
                &run.changed,
                &run.error,
            ],
        )?;
        Ok(())
    }

    fn last_sync_run(&self) -> Result<Option<SyncRun>> {
        self.row(
            "SELECT id, finished_at, read, changed, error FROM sync_runs
             ORDER BY finished_at DESC LIMIT 1",
            &[],
        )?
        .map(|row| {
            Ok(SyncRun {
                id: row.try_get(0)?,
                finished_at_ms: row.try_get(1)?,
                read: row.try_get(2)?,
                changed: row.try_get(3)?,
                error: row.try_get(4)?,
            })
        })
        .transpose()
    }

    fn read_setting(&self, key: &str) -> Result<Option<String>> {
        self.row("SELECT value FROM settings WHERE key = $1", &[&key])?
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
    }

    fn insert_setting(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2)",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn record_heartbeat(&self, now_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO settings (key, value) VALUES ('heartbeat', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&now_ms.to_string()],
        )?;
        Ok(())
    }
}
