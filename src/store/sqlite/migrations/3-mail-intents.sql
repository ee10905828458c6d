-- Version 3: a queued mail keeps the values it is worded from (a JSON
-- domain::MailMessage) instead of its rendered text and HTML; the worker
-- renders it when it sends it. Mail queued before keeps its rendering.

CREATE TABLE outbox_v3 (
    id              INTEGER PRIMARY KEY,
    cause           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (cause, recipient)
) STRICT;
INSERT INTO outbox_v3 (id, cause, kind, recipient, message, status, attempts, next_attempt_at,
                       last_error, created_at, sent_at)
SELECT id, cause, kind, recipient,
       json_object('rendered', json_object('subject', subject, 'text', text_body, 'html', html_body)),
       status, attempts, next_attempt_at, last_error, created_at, sent_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
