-- WhatsApp numbers being registered at Twilio (Senders API) through the onboarding wizard or
-- `POST /api/v1/senders/register` (issue 21). A registration is kept from the first step so
-- the wizard can be resumed where it stopped (Twilio unreachable, a refusal to correct), and
-- one number has at most one open registration: two admins onboarding the same number, one
-- wins and the other is told so, before anything reaches Twilio.
CREATE TABLE sender_registrations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- E.164, `+15017122661`.
    number              text COLLATE "C" NOT NULL,
    waba_id             text NOT NULL,
    verification_method text NOT NULL CHECK (verification_method IN ('sms', 'voice')),
    -- The WhatsApp Business profile as entered (null until the profile step).
    profile             jsonb,
    -- draft: not at Twilio yet (or its last attempt failed: see last_error); submitting: a
    -- call creating it at Twilio is under way since claimed_at; submitted: Twilio has it
    -- (sender_id, twilio_sid), waiting for its code or for Meta; online: done; cancelled.
    step                text NOT NULL
                        CHECK (step IN ('draft', 'submitting', 'submitted', 'online', 'cancelled')),
    claimed_at          timestamptz,
    sender_id           bigint REFERENCES senders (id),
    twilio_sid          text,
    -- Why the last attempt stopped, in words, with Twilio's error code when it gave one.
    last_error          text,
    last_error_code     bigint,
    -- Twilio answered that the account's first sender must be registered by Self Sign-up.
    self_signup         boolean NOT NULL DEFAULT false,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (step NOT IN ('submitted', 'online') OR (sender_id IS NOT NULL AND twilio_sid IS NOT NULL))
);
-- One open registration per number.
CREATE UNIQUE INDEX sender_registrations_open_number ON sender_registrations (number)
    WHERE step IN ('draft', 'submitting', 'submitted');
CREATE INDEX sender_registrations_by_sender ON sender_registrations (sender_id);
