-- Template use (issue 20). When wadash last sent a message with each template: set when Twilio accepts a
-- send with its content SID (one-off sends, broadcasts, reminders), at most once a minute per
-- template so a large broadcast does not rewrite the row for every recipient.
ALTER TABLE templates ADD COLUMN last_used_at timestamptz;

-- Which template each sent message used, beside its cost (written in the same insert, so no
-- extra write per send), for the template pages' "sends in the last 30 days".
ALTER TABLE message_costs ADD COLUMN content_sid text COLLATE "C";
CREATE INDEX message_costs_by_template ON message_costs (content_sid, created_at)
    WHERE content_sid IS NOT NULL;
