-- Version 2: every event gets a state (SPEC §3 Quarantine) and a source
-- (webhook or sync), sync runs are recorded, objects keep what
-- retries and payouts report, landlords get a bank account, and a landlord
-- mail's cause becomes the object state it announced.

CREATE TABLE events_v2 (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    livemode    INTEGER NOT NULL,
    object_id   TEXT,
    received_at INTEGER NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    source      TEXT NOT NULL
) STRICT;
INSERT INTO events_v2 (seq, id, type, created, livemode, object_id, received_at, body, state, reason, source)
SELECT seq, id, type, created, livemode, object_id, received_at, body,
       CASE
           WHEN applied = 1 THEN 'applied'
           WHEN type IN ('payment_request.created', 'payment_request.processing',
                         'payment_request.retrying', 'payment_request.succeeded',
                         'payment_request.failed', 'payment_request.cancelled',
                         'payout.created', 'payout.paid', 'payout.failed', 'payout.canceled')
               THEN 'superseded'
           ELSE 'recorded'
       END,
       NULL,
       'webhook'
FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_by_created ON events (created DESC, seq DESC);
CREATE INDEX events_by_type ON events (type, created DESC, seq DESC);
CREATE INDEX events_by_received ON events (received_at);
CREATE INDEX events_quarantined ON events (created DESC, seq DESC) WHERE state = 'quarantined';

ALTER TABLE payment_requests ADD COLUMN payment_method_used TEXT;
ALTER TABLE payment_requests ADD COLUMN last_event_type TEXT;
UPDATE payment_requests
SET payment_method_used = (SELECT json_extract(e.body, '$.data.object.payment_method_used')
                           FROM events e WHERE e.id = payment_requests.last_event_id),
    last_event_type = (SELECT e.type FROM events e WHERE e.id = payment_requests.last_event_id);
CREATE INDEX payment_requests_undated ON payment_requests (created) WHERE period IS NULL;

ALTER TABLE payouts ADD COLUMN failure_reason TEXT;
UPDATE payouts
SET failure_reason = (SELECT json_extract(e.body, '$.data.object.failure_reason')
                      FROM events e WHERE e.id = payouts.last_event_id);
CREATE INDEX payouts_undated ON payouts (created) WHERE period IS NULL;

ALTER TABLE landlords ADD COLUMN bank_account TEXT;
CREATE UNIQUE INDEX landlords_by_bank_account ON landlords (bank_account);

-- A mail already sent for an event now counts for the state it announced, so
-- a replay or a sync never announces it again.
UPDATE OR IGNORE outbox
SET cause = (SELECT e.object_id || ':' ||
                    CASE outbox.kind
                        WHEN 'rent_received' THEN 'succeeded'
                        WHEN 'collection_failed' THEN 'failed'
                        WHEN 'payout_paid' THEN 'paid'
                        WHEN 'payout_failed' THEN 'failed'
                        ELSE 'retrying:' || coalesce(json_extract(e.body, '$.data.object.attempts'),
                                                     json_extract(e.body, '$.data.object.next_retry_at'),
                                                     e.created)
                    END
             FROM events e WHERE e.id = outbox.cause AND e.object_id IS NOT NULL)
WHERE kind != 'daily_report'
  AND EXISTS (SELECT 1 FROM events e WHERE e.id = outbox.cause AND e.object_id IS NOT NULL);

CREATE TABLE sync_runs (
    id          TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    read        INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    error       TEXT
) STRICT;

-- The exceptions of each recorded daily report: what the next report compares
-- with ("what changed") and where `since` comes from.
CREATE TABLE report_exceptions (
    date     TEXT NOT NULL,               -- the report's date
    key      TEXT NOT NULL,               -- kind|property|landlord|period|reference
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    since    TEXT NOT NULL,               -- the first report date it appeared in
    PRIMARY KEY (date, key)
) STRICT;
