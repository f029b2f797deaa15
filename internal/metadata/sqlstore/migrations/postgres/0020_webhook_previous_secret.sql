-- Webhook secret rotation (issue 18, docs/webhooks.md). previous_secret is the secret a
-- rotation replaced, an envelope of internal/secrets sealed for its own column
-- ("webhooks/ID/previous_secret"), '' when none; deliveries are signed with it too
-- until previous_secret_expires (unix nanoseconds), after which it is not used and is
-- dropped when next read or rotated.
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN previous_secret_expires BIGINT NOT NULL DEFAULT 0;
