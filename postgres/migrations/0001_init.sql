-- The first schema of the images service. Ids are the text form of UUIDv7s,
-- compared byte by byte (COLLATE "C") whatever the database's locale, as the
-- listings' keyset cursors and the other stores expect; every time is a
-- timestamptz (microseconds), written and read in UTC.

CREATE TABLE images (
    id                text COLLATE "C" PRIMARY KEY,
    owner             text NOT NULL,
    original_filename text NOT NULL,
    media_type        text NOT NULL,
    size              bigint NOT NULL,
    width             integer NOT NULL,
    height            integer NOT NULL,
    sha256            text NOT NULL,
    blob_key          text NOT NULL UNIQUE,
    source            text NOT NULL,
    generation        jsonb,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- An owner's images in (created_at, id) order: the keyset listings in both
-- directions, and their counts; the second one serves the source filter.
CREATE INDEX images_owner_created_id ON images (owner, created_at, id);
CREATE INDEX images_owner_source_created_id ON images (owner, source, created_at, id);

CREATE TABLE idempotency_keys (
    owner        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    completed    boolean NOT NULL DEFAULT false,
    status_code  integer NOT NULL DEFAULT 0,
    response     bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);

-- For sweeping expired records.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- One row per generation started: running while charged is NULL and
-- lease_until has not passed, then charging `charged` images to the rolling
-- day it started in.
CREATE TABLE quota_reservations (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    images      integer NOT NULL,
    charged     integer,
    created_at  timestamptz NOT NULL,
    lease_until timestamptz NOT NULL
);

CREATE INDEX quota_reservations_owner_created_at ON quota_reservations (owner, created_at);
CREATE INDEX quota_reservations_owner_running ON quota_reservations (owner, lease_until)
    WHERE charged IS NULL;

CREATE TABLE jobs (
    id            text COLLATE "C" PRIMARY KEY,
    owner         text NOT NULL,
    status        text NOT NULL,
    provider      text NOT NULL,
    request       json,
    image_ids     text[],          -- NULL when none were given
    error_code    text NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    attempts      integer NOT NULL DEFAULT 0,
    lease_owner   text NOT NULL DEFAULT '',
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- The claimable jobs, oldest first: queued ones, and running ones whose lease
-- may have passed. Finished jobs, the bulk of the table, are not indexed.
CREATE INDEX jobs_claimable ON jobs (created_at, id) WHERE status IN ('queued', 'running');
