-- casapay-recon schema: the single source of truth.
-- Applied as a whole to a new database; an existing one is brought here by the
-- numbered migrations in src/store/migrations.rs. PRAGMA user_version records
-- which version a database is at.

-- Generated credentials (webhook secret, admin token hash) when none are configured.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Every event exactly as CasaPay sent it. The primary key is what makes
-- redelivery idempotent: a second insert of the same id is a duplicate.
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,          -- arrival order
    id          TEXT NOT NULL UNIQUE,         -- evt_…
    type        TEXT NOT NULL,
    created     INTEGER NOT NULL,             -- CasaPay's unix seconds
    livemode    INTEGER NOT NULL,
    object_id   TEXT,                         -- preq_… / po_… / other
    applied     INTEGER NOT NULL,             -- 1 if it changed the stored object
    received_at INTEGER NOT NULL,             -- our unix milliseconds
    body        TEXT NOT NULL                 -- raw body, byte for byte
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_created ON events (created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS events_by_received ON events (received_at);

-- The newest known state of each PaymentRequest (see SPEC §3 "Order").
CREATE TABLE IF NOT EXISTS payment_requests (
    id                TEXT PRIMARY KEY,       -- preq_…
    payment_agreement TEXT,
    amount            INTEGER NOT NULL,       -- minor units
    currency          TEXT NOT NULL,          -- lower-case ISO 4217
    status            TEXT NOT NULL,
    failure_reason    TEXT,
    attempts          INTEGER,
    next_retry_at     INTEGER,
    property_id       TEXT,                   -- metadata.property_id
    period            TEXT,                   -- metadata.period
    created           INTEGER NOT NULL,
    event_created     INTEGER NOT NULL,       -- created of the event that set this state
    status_rank       INTEGER NOT NULL,       -- tie-break for equal event_created
    last_event_id     TEXT NOT NULL           -- the event whose object this is
) STRICT;
-- Reconciliation reads a period at a time; each extra index costs every webhook a
-- random page write, so there is no other.
CREATE INDEX IF NOT EXISTS payment_requests_by_period ON payment_requests (period);

-- The newest known state of each Payout.
CREATE TABLE IF NOT EXISTS payouts (
    id              TEXT PRIMARY KEY,         -- po_…
    amount          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    destination     TEXT,
    arrival_date    INTEGER,
    failure_code    TEXT,
    failure_message TEXT,
    landlord_id     TEXT,                     -- metadata.landlord_id
    period          TEXT,                     -- metadata.period
    created         INTEGER NOT NULL,
    event_created   INTEGER NOT NULL,
    status_rank     INTEGER NOT NULL,
    last_event_id   TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS payouts_by_period ON payouts (period);

-- The rent roll: who owns what, and the rent expected per property and period.
CREATE TABLE IF NOT EXISTS landlords (
    id     TEXT PRIMARY KEY,                  -- ll_…
    name   TEXT,
    email  TEXT,
    notify INTEGER NOT NULL DEFAULT 1         -- 0: the landlord opted out of e-mail
) STRICT;

CREATE TABLE IF NOT EXISTS properties (
    id                TEXT PRIMARY KEY,       -- prop_…
    landlord_id       TEXT NOT NULL REFERENCES landlords (id),
    name              TEXT,
    payment_agreement TEXT                    -- fallback match for PaymentRequests
) STRICT;
CREATE INDEX IF NOT EXISTS properties_by_agreement ON properties (payment_agreement);

CREATE TABLE IF NOT EXISTS expected_rent (
    property_id    TEXT NOT NULL REFERENCES properties (id),
    period         TEXT NOT NULL,             -- YYYY-MM
    landlord_id    TEXT NOT NULL REFERENCES landlords (id),
    amount         INTEGER NOT NULL,          -- minor units
    currency       TEXT NOT NULL,
    due_date       TEXT NOT NULL,             -- YYYY-MM-DD in CASAPAY_TIMEZONE
    commission_bps INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (property_id, period)
) STRICT;
CREATE INDEX IF NOT EXISTS expected_rent_by_period ON expected_rent (period, landlord_id);

-- Mail waiting to be delivered, queued in the same transaction as its cause.
-- One row per (cause, recipient): a redelivered event never mails twice.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    cause           TEXT NOT NULL,            -- event id, or report:YYYY-MM-DD
    kind            TEXT NOT NULL,            -- rent_received, collection_retrying, … daily_report
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,         -- unix ms; for 'sending', when the claim lapses
    last_error      TEXT,
    created_at      INTEGER NOT NULL,         -- unix ms
    sent_at         INTEGER,
    UNIQUE (cause, recipient)
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);

-- One row per daily report built by the scheduler: "once per date, even across restarts".
CREATE TABLE IF NOT EXISTS daily_reports (
    date       TEXT PRIMARY KEY,              -- YYYY-MM-DD in CASAPAY_TIMEZONE
    created_at INTEGER NOT NULL,              -- unix ms
    recipients INTEGER NOT NULL               -- mails queued (0: kept, not mailed)
) STRICT;
