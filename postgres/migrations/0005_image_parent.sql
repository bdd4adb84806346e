-- 0005: the image an edit was made from (imaged.Image.ParentID), NULL for
-- uploads and generations. Not a foreign key: deleting the source keeps
-- its edits, which then name an image that is gone.

ALTER TABLE images ADD COLUMN parent_id TEXT;
