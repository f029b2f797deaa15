-- The certificates and ACME account key of `hubctl serve --tls=acme` (autocert's cache),
-- kept in the database so replicas share one account and one certificate per name.
CREATE TABLE acme_cache (
	key        TEXT PRIMARY KEY,
	data       BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);
