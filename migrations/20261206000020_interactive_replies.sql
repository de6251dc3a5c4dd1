-- Interactive replies (issue 20): a quick-reply button tapped or a list item chosen, as Twilio
-- reports them on `/wa` (ButtonPayload/ButtonText, ListId/ListTitle/ListDescription,
-- MessageType, OriginalRepliedMessageSid/OriginalRepliedMessageSender).
--
-- A side table rather than columns of `messages`: only taps have a row, and the index that
-- links a tap to the message that carried the buttons covers taps alone. It is written by the
-- same statement that stores the inbound message (src/storage/events.rs), so the `/wa` hot
-- path keeps its one statement per batch; a batch without taps inserts nothing here.
-- Like `message_events`, no foreign key to `messages` (the writer upserts both at once).
--
-- Values are kept as sent, up to 1000 bytes each (WhatsApp's own limits are far below:
-- 256 characters for a button id, 200 for a list id); a longer one is cut at a character
-- boundary and `truncated` is set. Every parameter stays whole in the message's events.
CREATE TABLE interactive_replies (
    message_sid       text COLLATE "C" PRIMARY KEY,
    -- `button` (quick-reply tap) or `list` (list-picker selection).
    kind              text NOT NULL CHECK (kind IN ('button', 'list')),
    -- ButtonPayload or ListId: the id the template gave the button or item.
    payload           text,
    -- ButtonText or ListTitle: what the contact saw and tapped.
    title             text,
    -- ListDescription, for a list item.
    description       text,
    -- MessageType as Twilio sent it (`button`, `interactive`, …).
    message_type      text,
    -- The message that carried the buttons, and who sent it.
    replied_to_sid    text COLLATE "C",
    replied_to_sender text,
    truncated         boolean NOT NULL DEFAULT false,
    received_at       timestamptz NOT NULL
);

-- A broadcast's taps: from each recipient's message (broadcast_recipients_sid_idx) to the
-- taps that answered it.
CREATE INDEX interactive_replies_replied_to_idx ON interactive_replies (replied_to_sid)
    WHERE replied_to_sid IS NOT NULL;

-- Reply rules that answer a tapped button (or a chosen list item) by its payload.
ALTER TABLE reply_rules DROP CONSTRAINT reply_rules_kind_check;
ALTER TABLE reply_rules ADD CONSTRAINT reply_rules_kind_check
    CHECK (kind IN ('keyword', 'regex', 'image_echo', 'button'));
