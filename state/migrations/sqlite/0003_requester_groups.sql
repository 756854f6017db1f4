-- The groups a grant's requester had when the grant was requested: a JSON
-- array of principal strings, sorted, without duplicates ('[]' for none).
-- NULL means not recorded: grants stored before this migration, and grants
-- without a requester identity (temporary grants). Written at creation
-- only; the trigger refuses to change it afterwards.

ALTER TABLE grants ADD COLUMN requester_groups TEXT;

CREATE TRIGGER grants_requester_groups_fixed BEFORE UPDATE OF requester_groups ON grants
WHEN OLD.requester_groups IS NOT NEW.requester_groups
BEGIN SELECT RAISE(ABORT, 'requester groups are recorded at creation and never changed'); END;
