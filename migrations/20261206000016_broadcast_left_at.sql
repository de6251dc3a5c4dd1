-- When wadash's pacer let each broadcast message go: the time it decided (its slot, or the
-- previous send plus one slot's spacing if that is later), on the wall clock. Unlike the
-- arrival at Twilio, it carries no network or scheduling jitter, so the throttle's promise
-- (never above the sender's rate) can be checked on it exactly.
ALTER TABLE broadcast_recipients ADD COLUMN left_at timestamptz;
