-- Version 3 (the first PostgreSQL schema was version 2): a queued mail keeps
-- the values it is worded from (a JSON domain::MailMessage) instead of its
-- rendered text and HTML. Mail queued before keeps its rendering.
ALTER TABLE outbox ADD COLUMN message TEXT;
UPDATE outbox SET message = json_build_object(
    'rendered', json_build_object('subject', subject, 'text', text_body, 'html', html_body))::text;
ALTER TABLE outbox ALTER COLUMN message SET NOT NULL;
ALTER TABLE outbox DROP COLUMN subject, DROP COLUMN text_body, DROP COLUMN html_body;
