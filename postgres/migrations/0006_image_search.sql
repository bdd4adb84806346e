-- Search of filenames and prompts through trigram indexes (pg_trgm).
--
-- A search is a case-insensitive substring match (ILIKE '%...%') of the
-- filename or the generation's prompt; with these GIN indexes of trigrams a
-- search of three characters or more reads the posting lists of its
-- trigrams, so its cost, total included, follows the number of matches and
-- not the number of the owner's images. pg_trgm rather than full text
-- (tsvector): it keeps the substring meaning searches always had (part of a
-- word, a filename's extension, any language), exactly what SQLite's FTS5
-- trigram tokenizer matches, so both stores answer alike.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the
-- database's owner may create it. When it is missing it is created in
-- public (or else the current schema), under a lock shared by every schema
-- of the database, since two schemas migrating at once would both create
-- it; where it already lives elsewhere, that schema's operator class is
-- used. Building the indexes holds writes to images until the migration
-- commits.

SELECT pg_advisory_xact_lock(hashtextextended('imaged.pg_trgm', 0));

DO $$
DECLARE
    ext_schema text;
BEGIN
    SELECT n.nspname INTO ext_schema
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NULL THEN
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
            ext_schema := 'public';
        ELSE
            ext_schema := current_schema();
        END IF;
        EXECUTE format('CREATE EXTENSION pg_trgm SCHEMA %I', ext_schema);
    END IF;
    EXECUTE format('CREATE INDEX images_filename_trgm ON images USING gin (original_filename %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX images_prompt_trgm ON images USING gin ((generation ->> ''prompt'') %I.gin_trgm_ops)', ext_schema);
END
$$;
