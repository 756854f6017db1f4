-- Break-glass incidents, emergency declarations, the alert outbox and the
-- health of audit sources. Times are INTEGER Unix microseconds (UTC); NULL
-- means "not set". Declarations are never changed or deleted; incidents are
-- never deleted.

CREATE TABLE incidents (
    id            TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    policy        TEXT    NOT NULL,
    account       TEXT    NOT NULL,
    cloud         TEXT    NOT NULL,
    declaration   TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    opened        INTEGER NOT NULL,
    first_event   INTEGER,
    last_event    INTEGER,
    review_due    INTEGER,
    event_count   INTEGER NOT NULL,
    successes     INTEGER NOT NULL,
    failures      INTEGER NOT NULL,
    events        TEXT    NOT NULL,
    reviewed_by   TEXT    NOT NULL,
    reviewed_at   INTEGER,
    review_notes  TEXT    NOT NULL,
    reminders     INTEGER NOT NULL,
    last_reminder INTEGER,
    updated       INTEGER NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened, id);
CREATE INDEX incidents_status ON incidents (status, policy);
CREATE INDEX incidents_policy ON incidents (policy, last_event);

CREATE TABLE declarations (
    id          TEXT    PRIMARY KEY,
    policy      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    incident    TEXT    NOT NULL,
    declared_by TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    expires     INTEGER NOT NULL
);
CREATE INDEX declarations_policy ON declarations (policy, expires);

CREATE TABLE alerts (
    key          TEXT    NOT NULL,
    notifier     TEXT    NOT NULL,
    incident     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT    NOT NULL,
    next_attempt INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    delivered    INTEGER,
    updated      INTEGER NOT NULL,
    PRIMARY KEY (key, notifier)
);
CREATE INDEX alerts_due ON alerts (status, next_attempt);
CREATE INDEX alerts_incident ON alerts (incident);

CREATE TABLE audit_source_status (
    name       TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL,
    format     TEXT    NOT NULL,
    cloud      TEXT    NOT NULL,
    last_poll  INTEGER,
    error      TEXT    NOT NULL,
    caught_up  INTEGER,
    last_event INTEGER,
    updated    INTEGER NOT NULL
);

CREATE TRIGGER incidents_never_deleted BEFORE DELETE ON incidents
BEGIN SELECT RAISE(ABORT, 'incidents are never deleted'); END;
CREATE TRIGGER declarations_append_only_u BEFORE UPDATE ON declarations
BEGIN SELECT RAISE(ABORT, 'declarations are append-only'); END;
CREATE TRIGGER declarations_append_only_d BEFORE DELETE ON declarations
BEGIN SELECT RAISE(ABORT, 'declarations are append-only'); END;
