-- When a cancel or the stale-session purge claimed the session (UTC unix nanoseconds),
-- or NULL. A claimed session is gone for every reader and for the commit, but its row
-- stays until the claimer has discarded what the upload stored: a claimer that dies in
-- between leaves a claim that the purge takes over once it is older than the purge's
-- cutoff, so no upload's bytes are left behind with nothing pointing at them.
ALTER TABLE uploads ADD COLUMN claimed_at INTEGER;
