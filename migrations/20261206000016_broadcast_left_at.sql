-- When each broadcast message was to leave and when it did: `slot_at` is the send slot the
-- database reserved for it in `send_slots` (shared by every instance, so the sender's limit
-- can be checked on these exactly), `left_at` when the pacer let it go to Twilio.
ALTER TABLE broadcast_recipients ADD COLUMN slot_at timestamptz, ADD COLUMN left_at timestamptz;
