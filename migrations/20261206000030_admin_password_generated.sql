-- Whether a user's password is still the one wadash generated (and printed on standard output,
-- which under systemd is the journal) when it created the first admin. Cleared when the
-- password changes; `wadash doctor` fails while it is set. Users created before this column
-- existed count as not generated: wadash cannot know.
ALTER TABLE users ADD COLUMN password_generated boolean NOT NULL DEFAULT false;
