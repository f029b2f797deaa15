-- When a hook was last turned on (unix nanoseconds; 0 for hooks from before this
-- column, which count from created_at). The dispatcher fans an event out to a hook only
-- if the event happened after both, so events raised while a hook was off are not sent
-- when it is turned on again before the dispatcher reached them (issue 18).
ALTER TABLE webhooks ADD COLUMN enabled_at BIGINT NOT NULL DEFAULT 0;
