-- The message log's "error code" filter and the overview's failures, on an index that only
-- failed messages enter: error_code is written once, when a message fails, so this costs
-- nothing on the status updates of messages that do not fail.
CREATE INDEX messages_error_code_idx ON messages (error_code, created_at DESC, sid DESC)
    WHERE error_code IS NOT NULL;
