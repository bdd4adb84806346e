-- 0002: how many images each owner has, per source, so that a listing's
-- total costs one lookup instead of a count of the owner's rows.
--
-- Triggers keep the counts in the transaction of every statement that
-- inserts, deletes or re-owns an image, whatever runs it: CreateImage,
-- DeleteImage, a bulk load or an operator's SQL. A count that falls to zero
-- stays as a row. The migration runs in the writer's immediate transaction,
-- so no image is written between the backfill and the triggers.

CREATE TABLE image_counts (
	owner  TEXT    NOT NULL,
	source TEXT    NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (owner, source)
) WITHOUT ROWID;

INSERT INTO image_counts (owner, source, n)
	SELECT owner, source, count(*) FROM images GROUP BY owner, source;

CREATE TRIGGER images_count_insert AFTER INSERT ON images BEGIN
	INSERT INTO image_counts (owner, source, n) VALUES (NEW.owner, NEW.source, 1)
		ON CONFLICT (owner, source) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER images_count_delete AFTER DELETE ON images BEGIN
	UPDATE image_counts SET n = n - 1 WHERE owner = OLD.owner AND source = OLD.source;
END;

CREATE TRIGGER images_count_update AFTER UPDATE OF owner, source ON images
	WHEN OLD.owner IS NOT NEW.owner OR OLD.source IS NOT NEW.source
BEGIN
	UPDATE image_counts SET n = n - 1 WHERE owner = OLD.owner AND source = OLD.source;
	INSERT INTO image_counts (owner, source, n) VALUES (NEW.owner, NEW.source, 1)
		ON CONFLICT (owner, source) DO UPDATE SET n = n + 1;
END;
