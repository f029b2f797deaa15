-- Dragonfly preheat hooks (issue 18, docs/webhooks.md "Dragonfly preheat"). kind says
-- what a delivery does: 'webhook' POSTs the event, 'dragonfly' creates a preheat job
-- on the Dragonfly manager at url. dragonfly holds that hook's settings as JSON (api,
-- scope, schedulerClusterIds, platform, timeout); dragonfly_token the manager's
-- personal access token, an envelope of internal/secrets sealed for this row
-- ("webhooks/ID/dragonfly_token"), '' when none. A delivery's job is the preheat job
-- it created and is polling (JSON: id, api, deadline, ...), '' before one exists: the
-- delivery stays 'pending' (shown as running) until the job ends.
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook', 'dragonfly'));
ALTER TABLE webhooks ADD COLUMN dragonfly TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN dragonfly_token TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN job TEXT NOT NULL DEFAULT '';
