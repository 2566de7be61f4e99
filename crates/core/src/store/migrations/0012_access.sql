-- Users, their sessions and API tokens, and the audit log (src/access).
-- No secret is stored in clear: passwords as argon2id PHC strings, session
-- ids and API tokens as their SHA-256. Written only by src/access.

-- A user acts with one role for one tenant: orderer roles name their
-- orderer; bank operators have institutions (access_user_institutions);
-- bank admins and auditors neither.
CREATE TABLE access_users (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN
                        ('bank-admin', 'bank-operator', 'orderer-admin', 'orderer-user', 'auditor')),
    orderer         TEXT    REFERENCES prepaid_orderers (id),
    password_hash   TEXT    NOT NULL,                   -- argon2id, PHC string
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_us   INTEGER NOT NULL,
    CHECK ((role IN ('orderer-admin', 'orderer-user')) = (orderer IS NOT NULL))
);

CREATE TABLE access_user_institutions (
    user            INTEGER NOT NULL REFERENCES access_users (id),
    institution     TEXT    NOT NULL,
    PRIMARY KEY (user, institution)
) WITHOUT ROWID;

-- A login session; the browser holds the id, the store its SHA-256.
CREATE TABLE access_sessions (
    id_hash         BLOB    PRIMARY KEY CHECK (length(id_hash) = 32),
    user            INTEGER NOT NULL REFERENCES access_users (id),
    csrf            TEXT    NOT NULL,
    source          TEXT,                               -- the peer address at login
    created_at_us   INTEGER NOT NULL,
    last_seen_us    INTEGER NOT NULL,
    ended_at_us     INTEGER                             -- logout
) WITHOUT ROWID;

CREATE INDEX access_sessions_user ON access_sessions (user);

-- Per-user API tokens; the client holds the token, the store its SHA-256.
CREATE TABLE access_tokens (
    id              INTEGER PRIMARY KEY,
    user            INTEGER NOT NULL REFERENCES access_users (id),
    label           TEXT    NOT NULL,
    hash            BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at_us   INTEGER NOT NULL,
    revoked_at_us   INTEGER
);

CREATE INDEX access_tokens_user ON access_tokens (user);

-- Who changed what, from where, with what outcome. Append-only: the
-- triggers refuse UPDATE and DELETE. A card appears only as its masked PAN
-- or its account, never a full PAN. Failed logins are counted from here for
-- the login rate limit.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at_us           INTEGER NOT NULL,
    actor           TEXT    NOT NULL,                   -- user name, `api-token`, `cli`, or the name tried
    role            TEXT,                               -- none when the actor is not known (a failed login)
    source          TEXT,                               -- the peer address
    action          TEXT    NOT NULL,
    object_kind     TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    before          TEXT,                               -- JSON
    after           TEXT,                               -- JSON
    outcome         TEXT    NOT NULL CHECK (outcome IN ('done', 'refused', 'failed'))
);

CREATE INDEX audit_log_at ON audit_log (at_us);
CREATE INDEX audit_log_actor ON audit_log (actor, at_us);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, at_us);
CREATE INDEX audit_log_source ON audit_log (source, at_us);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
