-- 0004: an owner's jobs, newest first, all of them or those of one status
-- (GET /api/images/generations), positioned by a keyset cursor.

CREATE INDEX jobs_owner_created ON jobs (owner, created_at, id);
CREATE INDEX jobs_owner_status_created ON jobs (owner, status, created_at, id);
