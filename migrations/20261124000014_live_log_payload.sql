-- Every ingest batch writes one change-log row listing the messages it changed, a few
-- kilobytes of JSON that is read back as text a few times within seconds (the live pages and
-- the roll-up job) and pruned soon after. Nothing queries inside it.
-- * `json` instead of `jsonb`: the text is built once and read back as it is, with no binary
--   conversion, key sorting or re-serialization on each read.
-- * lz4 instead of the default pglz for the rows large enough to be compressed: several times
--   less CPU. Where the server was built without lz4, the default stays.
ALTER TABLE live_log ALTER COLUMN payload TYPE json USING payload::json;

DO $$
BEGIN
    ALTER TABLE live_log ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; live_log keeps the default compression';
END
$$;
