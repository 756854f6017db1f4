-- Break-glass incidents, emergency declarations, the alert outbox and the
-- health of audit sources. Declarations are never changed or deleted;
-- incidents are never deleted.

CREATE TABLE incidents (
    id            TEXT        PRIMARY KEY,
    version       BIGINT      NOT NULL,
    policy        TEXT        NOT NULL,
    account       TEXT        NOT NULL,
    cloud         TEXT        NOT NULL,
    declaration   TEXT        NOT NULL,
    severity      TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    opened        TIMESTAMPTZ NOT NULL,
    first_event   TIMESTAMPTZ,
    last_event    TIMESTAMPTZ,
    review_due    TIMESTAMPTZ,
    event_count   INTEGER     NOT NULL,
    successes     INTEGER     NOT NULL,
    failures      INTEGER     NOT NULL,
    -- TEXT, not JSONB: returned exactly as written.
    events        TEXT        NOT NULL,
    reviewed_by   TEXT        NOT NULL,
    reviewed_at   TIMESTAMPTZ,
    review_notes  TEXT        NOT NULL,
    reminders     INTEGER     NOT NULL,
    last_reminder TIMESTAMPTZ,
    updated       TIMESTAMPTZ NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened, id);
CREATE INDEX incidents_status ON incidents (status, policy);
CREATE INDEX incidents_policy ON incidents (policy, last_event);

CREATE TABLE declarations (
    id          TEXT        PRIMARY KEY,
    policy      TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    incident    TEXT        NOT NULL,
    declared_by TEXT        NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    expires     TIMESTAMPTZ NOT NULL
);
CREATE INDEX declarations_policy ON declarations (policy, expires);

CREATE TABLE alerts (
    key          TEXT        NOT NULL,
    notifier     TEXT        NOT NULL,
    incident     TEXT        NOT NULL,
    kind         TEXT        NOT NULL,
    -- TEXT, not JSONB: every delivery attempt sends the same bytes.
    payload      TEXT        NOT NULL,
    status       TEXT        NOT NULL,
    attempts     INTEGER     NOT NULL,
    last_error   TEXT        NOT NULL,
    next_attempt TIMESTAMPTZ NOT NULL,
    created      TIMESTAMPTZ NOT NULL,
    delivered    TIMESTAMPTZ,
    updated      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, notifier)
);
CREATE INDEX alerts_due ON alerts (status, next_attempt);
CREATE INDEX alerts_incident ON alerts (incident);

CREATE TABLE audit_source_status (
    name       TEXT        PRIMARY KEY,
    type       TEXT        NOT NULL,
    format     TEXT        NOT NULL,
    cloud      TEXT        NOT NULL,
    last_poll  TIMESTAMPTZ,
    error      TEXT        NOT NULL,
    caught_up  TIMESTAMPTZ,
    last_event TIMESTAMPTZ,
    updated    TIMESTAMPTZ NOT NULL
);

CREATE TRIGGER incidents_never_deleted BEFORE DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
CREATE TRIGGER declarations_append_only BEFORE UPDATE OR DELETE ON declarations
    FOR EACH ROW EXECUTE FUNCTION elevate_refuse_change();
