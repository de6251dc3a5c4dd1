-- The time zone a person reads times in on the dashboard (an IANA name); NULL reads UTC.
ALTER TABLE users ADD COLUMN time_zone text;
