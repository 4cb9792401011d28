-- Changing a user's password ends that user's sessions: every token and console session carries the version it was
-- issued under, and the per-request check (TokenBlocklist.is_usable) accepts only the current one.
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_version integer NOT NULL DEFAULT 0;
