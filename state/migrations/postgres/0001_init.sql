-- elevate state schema, PostgreSQL. Grants, their history and the audit log
-- are never deleted or rewritten: triggers refuse it.

CREATE TABLE grants (
    id            TEXT        PRIMARY KEY,
    version       BIGINT      NOT NULL,
    kind          TEXT        NOT NULL,
    principal     TEXT        NOT NULL,
    principal_key TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    policy        TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    justification TEXT        NOT NULL,
    ticket        TEXT        NOT NULL,
    duration_ns   BIGINT      NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    not_before    TIMESTAMPTZ,
    starts        TIMESTAMPTZ,
    expires       TIMESTAMPTZ,
    renewals      INTEGER     NOT NULL,
    reason        TEXT        NOT NULL,
    updated       TIMESTAMPTZ NOT NULL
);
CREATE INDEX grants_requested ON grants (requested_at, id);
CREATE INDEX grants_status ON grants (status, expires);
CREATE INDEX grants_principal ON grants (principal_key);
CREATE INDEX grants_role ON grants (role);
CREATE INDEX grants_updated ON grants (updated);

CREATE TABLE grant_approvals (
    grant_id     TEXT        NOT NULL REFERENCES grants (id),
    idx          INTEGER     NOT NULL,
    approver     TEXT        NOT NULL,
    approver_key TEXT        NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    approve      BOOLEAN     NOT NULL,
    comment      TEXT        NOT NULL,
    PRIMARY KEY (grant_id, idx),
    UNIQUE (grant_id, approver_key)
);

CREATE TABLE grant_events (
    grant_id    TEXT        NOT NULL REFERENCES grants (id),
    version     BIGINT      NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    note        TEXT        NOT NULL,
    from_status TEXT        NOT NULL,
    to_status   TEXT        NOT NULL,
    -- TEXT, not JSONB: the snapshot is returned exactly as written.
    snapshot    TEXT        NOT NULL,
    PRIMARY KEY (grant_id, version)
);

CREATE TABLE bindings (
    cloud         TEXT        NOT NULL,
    scope         TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    instance_arn  TEXT        NOT NULL,
    pim           BOOLEAN     NOT NULL,
    principal     TEXT        NOT NULL,
    principal_key TEXT        NOT NULL,
    owner         TEXT        NOT NULL,
    not_before    TIMESTAMPTZ,
    expires       TIMESTAMPTZ,
    native        BOOLEAN     NOT NULL,
    raw           TEXT        NOT NULL,
    state         TEXT        NOT NULL,
    detail        TEXT        NOT NULL,
    updated       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cloud, scope, role, instance_arn, pim, principal_key, owner)
);
CREATE INDEX bindings_owner ON bindings (owner);

CREATE TABLE audit_events (
    seq       BIGINT      PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    subject   TEXT        NOT NULL,
    -- TEXT, not JSONB: the hash covers the exact bytes, and JSONB reorders keys.
    data      TEXT        NOT NULL,
    prev_hash TEXT        NOT NULL,
    hash      TEXT        NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

-- The last appended entry: appends serialise on this row (SELECT … FOR
-- UPDATE), and verification compares the chain's end with it to catch a
-- truncated tail.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE leases (
    name     TEXT        PRIMARY KEY,
    holder   TEXT        NOT NULL,
    token    BIGINT      NOT NULL,
    acquired TIMESTAMPTZ,
    expires  TIMESTAMPTZ
);

CREATE TABLE audit_cursors (
    source  TEXT        PRIMARY KEY,
    value   TEXT        NOT NULL,
    updated TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION elevate_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows are never updated or deleted', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER grants_never_deleted BEFORE DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
CREATE TRIGGER grant_approvals_append_only BEFORE UPDATE OR DELETE ON grant_approvals
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
CREATE TRIGGER grant_events_append_only BEFORE UPDATE OR DELETE ON grant_events
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
