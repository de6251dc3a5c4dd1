-- Every ingest batch writes one change-log row listing the messages it changed: typically a
-- few kilobytes of JSON, which PostgreSQL compresses. Its default compressor (pglz) costs
-- several times more CPU than lz4, for a row that is read a few times within seconds and
-- pruned soon after. Use lz4 where the server was built with it; elsewhere keep the default.
DO $$
BEGIN
    ALTER TABLE live_log ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; live_log keeps the default compression';
END
$$;
