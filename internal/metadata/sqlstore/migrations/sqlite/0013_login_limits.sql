-- Login limits shared by every replica (issue 16): failed-login counters per key in a
-- fixed window, and the addresses each account signed in from. key is prefixed by what
-- it counts ("pair:" account|address, "addr:" address, "user:" account, "known:"
-- account|address); count is the failures in the window that began at since, or 0 for
-- a "known:" row, whose since is the last sign-in (unix nanoseconds).
CREATE TABLE login_limits (
	key   TEXT PRIMARY KEY,
	count INTEGER NOT NULL,
	since INTEGER NOT NULL
);
-- Expired rows are deleted by age.
CREATE INDEX login_limits_since ON login_limits (since);
