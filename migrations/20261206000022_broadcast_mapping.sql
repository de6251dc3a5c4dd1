-- Broadcasts with templates (issue 20). `held_template`: the template a broadcast is held for
-- (deleted at Twilio, or no longer approved); the broadcast runner resumes it once the
-- catalogue has that template approved again. NULL for any other hold (the credit reserve).
-- `variable_mapping`: which CSV column, or value for everyone, filled each placeholder, as
-- asked (the recipients' own variables are already mapped; this is the record of how).
ALTER TABLE broadcasts ADD COLUMN held_template text, ADD COLUMN variable_mapping jsonb;
CREATE INDEX broadcasts_held_template ON broadcasts (held_template)
    WHERE held_template IS NOT NULL;
