-- 0001: images, idempotency keys, quota reservations and generation jobs.
-- Every time is an INTEGER of microseconds since the Unix epoch, UTC.

CREATE TABLE images (
	id                TEXT    NOT NULL PRIMARY KEY,
	owner             TEXT    NOT NULL,
	original_filename TEXT    NOT NULL,
	-- original_filename lowercased by Go (Unicode-aware; SQLite's lower()
	-- only folds ASCII), searched with LIKE ... ESCAPE '\'.
	filename_lower    TEXT    NOT NULL,
	media_type        TEXT    NOT NULL,
	size              INTEGER NOT NULL,
	width             INTEGER NOT NULL,
	height            INTEGER NOT NULL,
	sha256            TEXT    NOT NULL,
	blob_key          TEXT    NOT NULL UNIQUE,
	source            TEXT    NOT NULL,
	generation        TEXT,             -- JSON of imaged.Generation, NULL for uploads
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);

-- The owner listing in both directions, positioned by a keyset cursor on
-- (created_at, id); the second one serves the source filter.
CREATE INDEX images_owner_created ON images (owner, created_at, id);
CREATE INDEX images_owner_source_created ON images (owner, source, created_at, id);

CREATE TABLE idempotency_keys (
	owner        TEXT    NOT NULL,
	key          TEXT    NOT NULL,
	request_hash TEXT    NOT NULL,
	completed    INTEGER NOT NULL DEFAULT 0,
	status_code  INTEGER NOT NULL DEFAULT 0,
	response     BLOB,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (owner, key)
);

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE quota_reservations (
	id          TEXT    NOT NULL PRIMARY KEY,
	owner       TEXT    NOT NULL,
	images      INTEGER NOT NULL,  -- reserved
	charged     INTEGER,           -- NULL while running, then the images charged
	created_at  INTEGER NOT NULL,
	lease_until INTEGER NOT NULL
);

CREATE INDEX quota_reservations_owner_created ON quota_reservations (owner, created_at);
CREATE INDEX quota_reservations_owner_running ON quota_reservations (owner, lease_until)
	WHERE charged IS NULL;

CREATE TABLE jobs (
	id            TEXT    NOT NULL PRIMARY KEY,
	owner         TEXT    NOT NULL,
	status        TEXT    NOT NULL,
	provider      TEXT    NOT NULL,
	request       BLOB    NOT NULL,
	image_ids     TEXT,             -- JSON array, NULL when none
	error_code    TEXT    NOT NULL DEFAULT '',
	error_message TEXT    NOT NULL DEFAULT '',
	attempts      INTEGER NOT NULL DEFAULT 0,
	lease_owner   TEXT    NOT NULL DEFAULT '',
	lease_until   INTEGER,          -- NULL when never leased
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

-- ClaimJob: the oldest queued job, and running jobs by lease expiry.
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE status = 'queued';
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE status = 'running';
