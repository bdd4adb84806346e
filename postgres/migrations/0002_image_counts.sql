-- How many images each owner has, per source, so that a listing's total
-- costs one lookup instead of a count of the owner's rows.
--
-- Statement triggers keep the counts in the transaction of every statement
-- that inserts, deletes, re-owns or truncates images, whatever runs it:
-- CreateImage, DeleteImage, COPY, an operator's SQL. Each statement applies
-- one delta per (owner, source) it touched, in key order, so that two
-- statements touching several owners lock their rows in the same order and
-- cannot deadlock; writers of one owner queue on that owner's row until they
-- commit, writers of different owners do not meet. A count that falls to
-- zero stays as a row.
--
-- The migration first locks images against writes (SHARE ROW EXCLUSIVE, which
-- the triggers' creation takes anyway), so that no image is written between
-- the backfill and the triggers: replicas still running the previous version
-- wait for it to commit.

LOCK TABLE images IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE image_counts (
    owner  text NOT NULL,
    source text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (owner, source)
);

INSERT INTO image_counts (owner, source, n)
    SELECT owner, source, count(*) FROM images GROUP BY owner, source;

-- image_counts_apply adds the delta of one statement on images. The search
-- path is the migration's, so that the trigger finds image_counts whatever
-- the search path of the session writing images.
CREATE FUNCTION image_counts_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM image_counts;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO image_counts AS c (owner, source, n)
            SELECT owner, source, count(*) FROM new_images
            GROUP BY owner, source ORDER BY owner, source
            ON CONFLICT (owner, source) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO image_counts AS c (owner, source, n)
            SELECT owner, source, -count(*) FROM old_images
            GROUP BY owner, source ORDER BY owner, source
            ON CONFLICT (owner, source) DO UPDATE SET n = c.n + excluded.n;
    ELSE -- UPDATE
        INSERT INTO image_counts AS c (owner, source, n)
            SELECT owner, source, sum(d) FROM (
                SELECT owner, source, 1 AS d FROM new_images
                UNION ALL
                SELECT owner, source, -1 FROM old_images
            ) delta
            GROUP BY owner, source HAVING sum(d) <> 0 ORDER BY owner, source
            ON CONFLICT (owner, source) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER images_count_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_images
    FOR EACH STATEMENT EXECUTE FUNCTION image_counts_apply();
CREATE TRIGGER images_count_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_images
    FOR EACH STATEMENT EXECUTE FUNCTION image_counts_apply();
CREATE TRIGGER images_count_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_images NEW TABLE AS new_images
    FOR EACH STATEMENT EXECUTE FUNCTION image_counts_apply();
CREATE TRIGGER images_count_truncate AFTER TRUNCATE ON images
    FOR EACH STATEMENT EXECUTE FUNCTION image_counts_apply();
