-- Broadcasts held for a reason that may clear (issue 21): `held_for` says what the hold waits
-- on — 'template' (deleted at Twilio or not approved; `held_on` is its content SID) or
-- 'sender' (Twilio has it offline or no longer lists it; `held_on` is its address) — and the
-- broadcast runner resumes the broadcast by itself once that is cleared. Both NULL for a hold
-- only an admin releases (the credit reserve). Replaces `held_template`.
ALTER TABLE broadcasts
    ADD COLUMN held_for text CHECK (held_for IN ('template', 'sender')),
    ADD COLUMN held_on text,
    ADD CONSTRAINT broadcasts_held_pair CHECK ((held_for IS NULL) = (held_on IS NULL));
UPDATE broadcasts SET held_for = 'template', held_on = held_template
 WHERE held_template IS NOT NULL;
DROP INDEX IF EXISTS broadcasts_held_template;
ALTER TABLE broadcasts DROP COLUMN held_template;
CREATE INDEX broadcasts_held_for ON broadcasts (held_for) WHERE held_for IS NOT NULL;
