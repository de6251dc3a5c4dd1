-- How many inbound messages each automatic-reply rule answered, and when it last did:
-- counted in the transaction that stores the reply (one UPDATE of the rule's row just before
-- it commits), so the rules page reads the figures without counting `auto_replies`.
ALTER TABLE reply_rules
    ADD COLUMN hits        bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_hit_at timestamptz;

-- The replies given before the counter existed.
UPDATE reply_rules r
   SET hits = s.n, last_hit_at = s.last
  FROM (SELECT rule_id, count(*) AS n, max(created_at) AS last
          FROM auto_replies WHERE rule_id IS NOT NULL GROUP BY rule_id) s
 WHERE s.rule_id = r.id;
