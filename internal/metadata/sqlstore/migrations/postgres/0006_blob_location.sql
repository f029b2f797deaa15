-- Where the blob store keeps a blob's bytes when not at the digest's own key
-- (docs/design/blob-locations.md): an S3 chunked upload completes where it was written
-- rather than being copied to the content-addressed key. '' means that default key, so
-- every blob recorded before this migration keeps meaning what it did. CommitBlob and
-- PutBlob set it only while the row is pending; it never changes afterwards.
ALTER TABLE blobs ADD COLUMN location TEXT NOT NULL DEFAULT '';
