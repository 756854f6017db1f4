-- elevate state schema, SQLite. Times are INTEGER Unix microseconds (UTC);
-- NULL means "not set". Grants, their history and the audit log are never
-- deleted or rewritten: triggers refuse it.

CREATE TABLE grants (
    id            TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    principal     TEXT    NOT NULL,
    principal_key TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    policy        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    justification TEXT    NOT NULL,
    ticket        TEXT    NOT NULL,
    duration_ns   INTEGER NOT NULL,
    requested_at  INTEGER NOT NULL,
    not_before    INTEGER,
    starts        INTEGER,
    expires       INTEGER,
    renewals      INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    updated       INTEGER NOT NULL
);
CREATE INDEX grants_requested ON grants (requested_at, id);
CREATE INDEX grants_status ON grants (status, expires);
CREATE INDEX grants_principal ON grants (principal_key);
CREATE INDEX grants_role ON grants (role);
CREATE INDEX grants_updated ON grants (updated);

CREATE TABLE grant_approvals (
    grant_id     TEXT    NOT NULL REFERENCES grants (id),
    idx          INTEGER NOT NULL,
    approver     TEXT    NOT NULL,
    approver_key TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    approve      INTEGER NOT NULL,
    comment      TEXT    NOT NULL,
    PRIMARY KEY (grant_id, idx),
    UNIQUE (grant_id, approver_key)
);

CREATE TABLE grant_events (
    grant_id    TEXT    NOT NULL REFERENCES grants (id),
    version     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    snapshot    TEXT    NOT NULL,
    PRIMARY KEY (grant_id, version)
);

CREATE TABLE bindings (
    cloud         TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    instance_arn  TEXT    NOT NULL,
    pim           INTEGER NOT NULL,
    principal     TEXT    NOT NULL,
    principal_key TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    not_before    INTEGER,
    expires       INTEGER,
    native        INTEGER NOT NULL,
    raw           TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    updated       INTEGER NOT NULL,
    PRIMARY KEY (cloud, scope, role, instance_arn, pim, principal_key, owner)
);
CREATE INDEX bindings_owner ON bindings (owner);

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    data      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

-- The last appended entry: appends serialise on this row, and verification
-- compares the chain's end with it to catch a truncated tail.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE leases (
    name     TEXT    PRIMARY KEY,
    holder   TEXT    NOT NULL,
    token    INTEGER NOT NULL,
    acquired INTEGER,
    expires  INTEGER
);

CREATE TABLE audit_cursors (
    source  TEXT    PRIMARY KEY,
    value   TEXT    NOT NULL,
    updated INTEGER NOT NULL
);

CREATE TRIGGER grants_never_deleted BEFORE DELETE ON grants
BEGIN SELECT RAISE(ABORT, 'grants are never deleted'); END;
CREATE TRIGGER grant_approvals_append_only_u BEFORE UPDATE ON grant_approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER grant_approvals_append_only_d BEFORE DELETE ON grant_approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER grant_events_append_only_u BEFORE UPDATE ON grant_events
BEGIN SELECT RAISE(ABORT, 'grant history is append-only'); END;
CREATE TRIGGER grant_events_append_only_d BEFORE DELETE ON grant_events
BEGIN SELECT RAISE(ABORT, 'grant history is append-only'); END;
CREATE TRIGGER audit_events_append_only_u BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_events_append_only_d BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
