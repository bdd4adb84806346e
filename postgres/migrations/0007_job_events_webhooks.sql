-- 0007: the events of every job (for the event streams of any replica), the
-- webhook a job reports to, the webhook deliveries queued for it, and each
-- owner's signing secret.

ALTER TABLE jobs ADD COLUMN webhook_url text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN webhook_events text NOT NULL DEFAULT ''; -- comma-separated

CREATE TABLE job_events (
    job_id        text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL,
    type          text NOT NULL,
    attempt       integer NOT NULL,
    percent       integer,          -- NULL when the event reports no progress
    image_ids     text[],           -- NULL when none
    error_code    text NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- RecentJobEvents: the jobs with news since a moment.
CREATE INDEX job_events_created ON job_events (created_at);

CREATE TABLE webhook_deliveries (
    id              text COLLATE "C" PRIMARY KEY,
    owner           text NOT NULL,
    job_id          text COLLATE "C" NOT NULL,
    event           text NOT NULL,
    url             text NOT NULL,
    body            bytea,            -- NULL until the first attempt renders it
    status          text NOT NULL,    -- pending, delivered, failed
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text NOT NULL DEFAULT '',
    lease_until     timestamptz,
    last_status     integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (job_id, event)
);

-- ClaimWebhookDelivery: the pending deliveries, the one due longest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE webhook_secrets (
    owner          text PRIMARY KEY,
    secret         text NOT NULL,
    previous       text NOT NULL DEFAULT '',
    previous_until timestamptz,
    created_at     timestamptz NOT NULL
);
