-- 0003: what an image's bytes say of their origin (imaged.Provenance as
-- JSON): the XMP digital source type and C2PA manifest of a generated image,
-- or those an upload came with. NULL when the bytes say nothing.

ALTER TABLE images ADD COLUMN provenance TEXT;
