-- A reminder occurrence due while its sender cannot send (offline at Twilio, no longer
-- listed, or de-authorized here) is queued as a held broadcast and recorded as 'held'. It
-- becomes 'sent' once the broadcast goes on, or 'skipped' (its broadcast canceled) when the
-- sender is not back within the reminder's lateness limit.
ALTER TABLE reminder_runs DROP CONSTRAINT reminder_runs_outcome_check;
ALTER TABLE reminder_runs ADD CONSTRAINT reminder_runs_outcome_check
    CHECK (outcome IN ('sent', 'skipped', 'held'));
CREATE INDEX reminder_runs_held_idx ON reminder_runs (due_at) WHERE outcome = 'held';
