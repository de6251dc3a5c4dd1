-- Each event's parameters are stored as received, in a `json` column (issue 17). Parsing them
-- into `jsonb` was the largest single cost of storing a callback: about 42,600 of some
-- 150,000 server instructions for a 430-byte status callback, where validating the same text
-- as `json` costs about 11,500 (bench/README.md, "A quarter fewer server instructions per
-- callback"). Nothing reads them by index: the message page shows them, and the inbound
-- location lookup reads three keys.
--
-- Expand only: this binary writes `params_json` and leaves `params` at its new default, an
-- empty object; it reads `params_json` where set and `params` otherwise (rows the previous
-- binary wrote). During a rolling upgrade the previous binary, which reads `params` only,
-- shows an empty parameter list for events a new instance stored (docs/deploy.md). A later
-- contract migration may drop `params` once no running release writes it, after copying it
-- into `params_json` where that is NULL (rows stored before this migration); dropping it
-- without that copy would lose those rows' parameters.
ALTER TABLE message_events ADD COLUMN params_json json;
ALTER TABLE message_events ALTER COLUMN params SET DEFAULT '{}';
