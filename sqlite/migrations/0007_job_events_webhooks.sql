-- 0007: the events of every job (for the event streams of any replica), the
-- webhook a job reports to, the webhook deliveries queued for it, and each
-- owner's signing secret.

ALTER TABLE jobs ADD COLUMN webhook_url TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN webhook_events TEXT NOT NULL DEFAULT ''; -- comma-separated

CREATE TABLE job_events (
	job_id        TEXT    NOT NULL,
	seq           INTEGER NOT NULL,
	type          TEXT    NOT NULL,
	attempt       INTEGER NOT NULL,
	percent       INTEGER,          -- NULL when the event reports no progress
	image_ids     TEXT,             -- JSON array, NULL when none
	error_code    TEXT    NOT NULL DEFAULT '',
	error_message TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

-- RecentJobEvents: the jobs with news since a moment.
CREATE INDEX job_events_created ON job_events (created_at);

CREATE TABLE webhook_deliveries (
	id              TEXT    NOT NULL PRIMARY KEY,
	owner           TEXT    NOT NULL,
	job_id          TEXT    NOT NULL,
	event           TEXT    NOT NULL,
	url             TEXT    NOT NULL,
	body            BLOB,             -- NULL until the first attempt renders it
	status          TEXT    NOT NULL, -- pending, delivered, failed
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	lease_owner     TEXT    NOT NULL DEFAULT '',
	lease_until     INTEGER,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (job_id, event)
);

-- ClaimWebhookDelivery: the pending deliveries, the one due longest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE webhook_secrets (
	owner          TEXT    NOT NULL PRIMARY KEY,
	secret         TEXT    NOT NULL,
	previous       TEXT    NOT NULL DEFAULT '',
	previous_until INTEGER,
	created_at     INTEGER NOT NULL
);
