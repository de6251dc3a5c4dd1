-- When wadash last sent a message with each template (issue 20): set when Twilio accepts a
-- send with its content SID (one-off sends, broadcasts, reminders), at most once a minute per
-- template so a large broadcast does not rewrite the row for every recipient.
ALTER TABLE templates ADD COLUMN last_used_at timestamptz;
