-- Online garbage collection (issue 4, docs/design/gc.md). A push pins a blob's row
-- (pinned_at = now, deleting_at = NULL) before it may trust bytes already in storage;
-- GC marks rows linked nowhere (deleting_at = now) and, on a later pass, sweeps those
-- still marked whose pin is older than the mark. Unix nanoseconds; NULL when unset.
-- A pinned row whose bytes are not stored yet has size -1 until PutBlob/CommitBlob.
ALTER TABLE blobs ADD COLUMN pinned_at BIGINT;
ALTER TABLE blobs ADD COLUMN deleting_at BIGINT;
CREATE INDEX blobs_deleting_at ON blobs (deleting_at) WHERE deleting_at IS NOT NULL;
