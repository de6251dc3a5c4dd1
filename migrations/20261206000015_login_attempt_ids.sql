-- Login attempts are reserved before the password is checked (accounts::throttle): each
-- reservation is a row that a successful login removes again, so rows need an identity.
ALTER TABLE login_failures ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
