-- The Messaging Service a WhatsApp sender is in at Twilio (issue 21), as the sender sync last
-- read it (NULL: in none, or not known).
ALTER TABLE senders ADD COLUMN messaging_service_sid text;
