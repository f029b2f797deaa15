-- Bytes in open upload sessions count against their namespace's quota (issue 12): a
-- session's upload_offset plus reserved, the bytes a request streaming into it may
-- still write (ReserveUpload, released by UpdateUpload). The quota check sums them per
-- namespace, by repository name.
ALTER TABLE uploads ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;
CREATE INDEX uploads_repository ON uploads (repository);
