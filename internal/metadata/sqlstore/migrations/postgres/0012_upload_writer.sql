-- The one request allowed to write to an upload session (issue 16): two PATCHes of one
-- session on two replicas would otherwise both write its next bytes, and on S3 the
-- second part of one number replaces the first, whatever the database then records.
-- writer names the request (a random id) and writing_until, in the database's clock
-- (unix nanoseconds), is when its hold lapses unless renewed; both NULL when nobody
-- writes. UpdateUpload records a chunk only for the writer that holds the session.
ALTER TABLE uploads ADD COLUMN writer TEXT;
ALTER TABLE uploads ADD COLUMN writing_until BIGINT;
