-- The groups a grant's requester had when the grant was requested: a JSON
-- array of principal strings, sorted, without duplicates ('[]' for none).
-- NULL means not recorded: grants stored before this migration, and grants
-- without a requester identity (temporary grants). Written at creation
-- only; the trigger refuses to change it afterwards.

-- TEXT, not JSONB: returned exactly as written.
ALTER TABLE grants ADD COLUMN requester_groups TEXT;

CREATE FUNCTION elevate_refuse_requester_groups_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'requester groups are recorded at creation and never changed (grant %)', OLD.id;
END
$$;
CREATE TRIGGER grants_requester_groups_fixed BEFORE UPDATE OF requester_groups ON grants
    FOR EACH ROW WHEN (OLD.requester_groups IS DISTINCT FROM NEW.requester_groups)
    EXECUTE FUNCTION elevate_refuse_requester_groups_change();
