-- A sync from Twilio must not undo what wadash itself just did there (issue 17's note on the
-- template sync race).
--
-- A sync reads Twilio's whole list, then writes it. If an admin submits, deletes or creates a
-- template (or registers, retires or moves a sender) at Twilio between that read and that
-- write, the list is older than the row, and writing it would put the old state back until
-- the next sync (or mark a just-created template deleted).
--
-- Every local write of Twilio's state takes a number from `local_changes` into the row's
-- `local_change`; a sync takes one before it reads Twilio and leaves alone every row whose
-- number is higher (its next sync brings Twilio's state for them). Numbers, not clocks: the
-- order holds whatever the instances' or the database's clock does.
--
-- Expand only: the previous binary neither writes nor reads the columns.
CREATE SEQUENCE local_changes;
ALTER TABLE templates ADD COLUMN local_change bigint;
ALTER TABLE senders ADD COLUMN local_change bigint;
