-- casapay-recon schema for PostgreSQL: the twin of schema.sql, table for table
-- and column for column (integers are BIGINT, flags BOOLEAN). Applied as a
-- whole to a new database under an advisory lock, so instances starting
-- together migrate once; `schema_version` records the version, as SQLite's
-- PRAGMA user_version does.

CREATE TABLE IF NOT EXISTS schema_version (
    version BIGINT NOT NULL
);

-- Generated credentials (webhook secret, admin token hash) when none are configured.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every event exactly as CasaPay sent it. The primary key is what makes
-- redelivery idempotent: a second insert of the same id is a duplicate.
CREATE TABLE IF NOT EXISTS events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,          -- arrival order
    id          TEXT NOT NULL UNIQUE,         -- evt_…
    type        TEXT NOT NULL,
    created     BIGINT NOT NULL,             -- CasaPay's unix seconds
    livemode    BOOLEAN NOT NULL,
    object_id   TEXT,                         -- preq_… / po_… / other
    received_at BIGINT NOT NULL,             -- our unix milliseconds
    body        TEXT NOT NULL,                -- raw body, byte for byte
    -- applied | superseded | recorded | quarantined | other_mode (SPEC §3 Quarantine)
    state       TEXT NOT NULL,
    reason      TEXT,                         -- why it is quarantined, naming the field
    source      TEXT NOT NULL                 -- webhook | sync (a snapshot read from CasaPay's API)
);
CREATE INDEX IF NOT EXISTS events_by_created ON events (created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS events_by_received ON events (received_at);
-- Quarantined events are few and listed often (report, API): a partial index costs other events nothing.
CREATE INDEX IF NOT EXISTS events_quarantined ON events (created DESC, seq DESC) WHERE state = 'quarantined';

-- The newest known state of each PaymentRequest (see SPEC §3 "Order").
CREATE TABLE IF NOT EXISTS payment_requests (
    id                TEXT PRIMARY KEY,       -- preq_…
    payment_agreement TEXT,
    amount            BIGINT NOT NULL,       -- minor units
    currency          TEXT NOT NULL,          -- lower-case ISO 4217
    status            TEXT NOT NULL,
    failure_reason    TEXT,
    attempts          BIGINT,
    next_retry_at     BIGINT,
    property_id       TEXT,                   -- metadata.property_id
    period            TEXT,                   -- metadata.period
    created           BIGINT NOT NULL,
    event_created     BIGINT NOT NULL,       -- created of the event that set this state
    status_rank       BIGINT NOT NULL,       -- tie-break for equal event_created
    last_event_id     TEXT NOT NULL,          -- the event whose object this is
    payment_method_used TEXT,
    last_event_type   TEXT                    -- type of that event (payment_request.retrying marks a failed attempt)
);
-- Reconciliation reads a period at a time; each extra index costs every webhook a
-- random page write. Requests without metadata.period (bulk-created) are found
-- by their creation date, through a partial index that dated requests never touch.
CREATE INDEX IF NOT EXISTS payment_requests_by_period ON payment_requests (period);
CREATE INDEX IF NOT EXISTS payment_requests_undated ON payment_requests (created) WHERE period IS NULL;

-- The newest known state of each Payout.
CREATE TABLE IF NOT EXISTS payouts (
    id              TEXT PRIMARY KEY,         -- po_…
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    destination     TEXT,
    arrival_date    BIGINT,
    failure_code    TEXT,
    failure_message TEXT,
    landlord_id     TEXT,                     -- metadata.landlord_id
    period          TEXT,                     -- metadata.period
    created         BIGINT NOT NULL,
    event_created   BIGINT NOT NULL,
    status_rank     BIGINT NOT NULL,
    last_event_id   TEXT NOT NULL,
    failure_reason  TEXT
);
CREATE INDEX IF NOT EXISTS payouts_by_period ON payouts (period);
CREATE INDEX IF NOT EXISTS payouts_undated ON payouts (created) WHERE period IS NULL;

-- The rent roll: who owns what, and the rent expected per property and period.
CREATE TABLE IF NOT EXISTS landlords (
    id     TEXT PRIMARY KEY,                  -- ll_…
    name   TEXT,
    email  TEXT,
    notify BOOLEAN NOT NULL DEFAULT TRUE,     -- false: the landlord opted out of e-mail
    bank_account TEXT                         -- ba_…: finds the landlord of a payout without metadata
);
CREATE UNIQUE INDEX IF NOT EXISTS landlords_by_bank_account ON landlords (bank_account);

CREATE TABLE IF NOT EXISTS properties (
    id                TEXT PRIMARY KEY,       -- prop_…
    landlord_id       TEXT NOT NULL REFERENCES landlords (id),
    name              TEXT,
    payment_agreement TEXT                    -- fallback match for PaymentRequests
);
CREATE INDEX IF NOT EXISTS properties_by_agreement ON properties (payment_agreement);

CREATE TABLE IF NOT EXISTS expected_rent (
    property_id    TEXT NOT NULL REFERENCES properties (id),
    period         TEXT NOT NULL,             -- YYYY-MM
    landlord_id    TEXT NOT NULL REFERENCES landlords (id),
    amount         BIGINT NOT NULL,          -- minor units
    currency       TEXT NOT NULL,
    due_date       TEXT NOT NULL,             -- YYYY-MM-DD in CASAPAY_TIMEZONE
    commission_bps BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (property_id, period)
);
CREATE INDEX IF NOT EXISTS expected_rent_by_period ON expected_rent (period, landlord_id);

-- Mail waiting to be delivered, queued in the same transaction as its cause.
-- One row per (cause, recipient), where the cause of a landlord mail is the
-- object state it announces (`preq_1:succeeded`, `preq_1:retrying:2`,
-- `po_1:paid`): redeliveries, later events of the same state, syncs and
-- replays never mail twice.
CREATE TABLE IF NOT EXISTS outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cause           TEXT NOT NULL,            -- object state, or report:YYYY-MM-DD
    kind            TEXT NOT NULL,            -- rent_received, collection_retrying, … daily_report
    recipient       TEXT NOT NULL,
    -- JSON: the values a landlord mail is worded from when it is sent
    -- ({"request":…} or {"payout":…}), or a message rendered when queued
    -- ({"rendered":{"subject","text","html"}}: the daily report)
    message         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,         -- unix ms; for 'sending', when the claim lapses
    last_error      TEXT,
    created_at      BIGINT NOT NULL,         -- unix ms
    sent_at         BIGINT,
    UNIQUE (cause, recipient)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);

-- One row per daily report built by the scheduler: "once per date, even across restarts".
CREATE TABLE IF NOT EXISTS daily_reports (
    date       TEXT PRIMARY KEY,              -- YYYY-MM-DD in CASAPAY_TIMEZONE
    created_at BIGINT NOT NULL,              -- unix ms
    recipients BIGINT NOT NULL               -- mails queued (0: kept, not mailed)
);

-- Every sync from CasaPay's API: what it read and changed, or why it failed
-- (the daily report's `sync_failed`).
CREATE TABLE IF NOT EXISTS sync_runs (
    id          TEXT PRIMARY KEY,             -- the run id in its events' ids: sync_<run>_<object>
    started_at  BIGINT NOT NULL,             -- unix ms
    finished_at BIGINT NOT NULL,             -- unix ms
    read        BIGINT NOT NULL,             -- objects read
    changed     BIGINT NOT NULL,             -- objects applied
    error       TEXT                          -- NULL: it completed
);

-- The exceptions of each recorded daily report: what the next report compares
-- with ("what changed") and where `since` comes from.
CREATE TABLE IF NOT EXISTS report_exceptions (
    date     TEXT NOT NULL,               -- the report's date
    key      TEXT NOT NULL,               -- kind|property|landlord|period|reference
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    since    TEXT NOT NULL,               -- the first report date it appeared in
    PRIMARY KEY (date, key)
);
