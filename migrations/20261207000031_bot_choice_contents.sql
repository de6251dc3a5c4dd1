-- Bot answers with choices as WhatsApp quick replies or list pickers (issue 22, item 3).
--
-- A question with choices is sent with a Content (twilio/quick-reply or twilio/list-picker,
-- with a twilio/text fallback) that wadash creates at Twilio the first time it asks that
-- question on that account and reuses afterwards. `key` is the hex SHA-256 of the canonical
-- content (account, shape, language, body, option titles and ids: src/bots/choices.rs).
--
-- Created once, also with several instances: an instance claims the key with
-- INSERT … ON CONFLICT before it calls Twilio (`content_sid` NULL meanwhile); the others wait
-- for the SID. A claim whose instance failed is released (deleted); one left by an instance
-- that died is taken over after a while (`claimed_at`).
CREATE TABLE bot_choice_contents (
    key          text COLLATE "C" PRIMARY KEY,
    account_sid  text NOT NULL,
    shape        text NOT NULL CHECK (shape IN ('quick_reply', 'list_picker')),
    -- The Content API `types` created (what the SID stands for).
    types        jsonb NOT NULL,
    content_sid  text,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz,
    last_used_at timestamptz
);

-- A bot reply asking a question with choices keeps them (the domain's ChoiceSet as JSON) so
-- that a tap on one of its buttons (ButtonPayload / ListId `bot-choice-<n>`, on the message
-- linked to the reply) reaches the bot as that option's value or title; `content_sid` is the
-- Content it was sent with, `choice_error` why it went as numbered text instead.
ALTER TABLE auto_replies
    ADD COLUMN choices jsonb,
    ADD COLUMN content_sid text,
    ADD COLUMN choice_error text;

-- A tap without OriginalRepliedMessageSid finds the conversation's latest choices.
CREATE INDEX auto_replies_choices_idx ON auto_replies (to_addr, from_addr, id DESC)
    WHERE choices IS NOT NULL;
