-- Storage quotas (issue 4): a namespace's limit in bytes over the distinct blobs linked
-- to its repositories, each blob counted once per namespace. NULL means unlimited.
-- LinkBlob checks it in the transaction that links.
ALTER TABLE namespaces ADD COLUMN quota_bytes BIGINT;
