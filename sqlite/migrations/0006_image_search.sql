-- 0006: full-text search of filenames and prompts (FTS5, trigram tokenizer).
--
-- images_search holds, for every image, its filename and its generation's
-- prompt, indexed by trigrams: a search of three characters or more is a
-- case-insensitive substring match (as the LIKE it replaces) that reads the
-- posting lists of its trigrams, so its cost, total included, follows the
-- number of matches and not the number of the owner's images. Its rowid is
-- the image's rowid, which searches join on; id is kept beside it for
-- checks by hand (VACUUM may renumber the rowids of a table without an
-- INTEGER PRIMARY KEY: imaged never runs it; after one, rebuild this table
-- with the INSERT below). Triggers keep it in the transaction of every
-- statement that writes images, whatever runs it.

CREATE VIRTUAL TABLE images_search USING fts5(
	id UNINDEXED,
	filename,
	prompt,
	tokenize = 'trigram'
);

INSERT INTO images_search (rowid, id, filename, prompt)
	SELECT rowid, id, original_filename, json_extract(generation, '$.prompt') FROM images;

CREATE TRIGGER images_search_insert AFTER INSERT ON images BEGIN
	INSERT INTO images_search (rowid, id, filename, prompt)
		VALUES (NEW.rowid, NEW.id, NEW.original_filename, json_extract(NEW.generation, '$.prompt'));
END;

CREATE TRIGGER images_search_delete AFTER DELETE ON images BEGIN
	DELETE FROM images_search WHERE rowid = OLD.rowid;
END;

CREATE TRIGGER images_search_update AFTER UPDATE OF id, original_filename, generation ON images BEGIN
	UPDATE images_search SET id = NEW.id, filename = NEW.original_filename,
		prompt = json_extract(NEW.generation, '$.prompt')
		WHERE rowid = OLD.rowid;
END;
