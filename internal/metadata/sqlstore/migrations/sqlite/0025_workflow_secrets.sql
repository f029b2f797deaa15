-- Workflow secrets (issue 19): a namespace's named values that its workflows' steps
-- name in `secrets:`. value is an envelope of internal/secrets sealed with the
-- associated data secrets.RowAD('workflow_secrets', id, 'value'), so a value copied
-- into another row opens nothing; the column is in sealedColumns, so `hubctl admin
-- secrets rotate` reseals it. id is text (random hex) as the resealer pages by it.
CREATE TABLE workflow_secrets (
	id         TEXT PRIMARY KEY,
	namespace  TEXT NOT NULL,
	name       TEXT NOT NULL,
	value      TEXT NOT NULL,
	created_by INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_by INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (namespace, name)
);
