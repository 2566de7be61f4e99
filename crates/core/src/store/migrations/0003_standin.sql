-- Stand-in and store-and-forward: institution states, balance snapshots,
-- the movements that make up each account's shadow balance, and the
-- per-institution SAF queue.

-- The state each institution is in, as last signalled or detected.
CREATE TABLE institution_state (
    institution     TEXT    PRIMARY KEY,
    state           TEXT    NOT NULL,             -- open | closing | closed | unreachable
    reason          TEXT    NOT NULL,
    changed_us      INTEGER NOT NULL,
    saf_paused      INTEGER NOT NULL DEFAULT 0    -- operator paused replay
);

-- Every transition, for operators (and for other processes to notice changes).
CREATE TABLE institution_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    institution     TEXT    NOT NULL,
    event           TEXT    NOT NULL,             -- the new state, or saf_paused / saf_resumed
    previous        TEXT,
    source          TEXT    NOT NULL,             -- soap | api | cli | breaker | probe | config
    reason          TEXT    NOT NULL,
    at_us           INTEGER NOT NULL
);

-- Balance files: staged first, made current in one small transaction.
CREATE TABLE balance_files (
    file_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    institution     TEXT    NOT NULL,
    sha256          BLOB    NOT NULL,
    as_of_us        INTEGER NOT NULL,
    rows            INTEGER NOT NULL DEFAULT 0,
    source          TEXT    NOT NULL,             -- upload | soap | drop:<file name> | cli
    state           TEXT    NOT NULL,             -- staging | current | superseded | discarded
    received_us     INTEGER NOT NULL,
    applied_us      INTEGER
);
CREATE INDEX balance_files_current ON balance_files (institution, state);

CREATE TABLE file_balances (
    file_id         INTEGER NOT NULL,
    account         TEXT    NOT NULL,
    available_minor INTEGER NOT NULL,
    currency        INTEGER NOT NULL,
    PRIMARY KEY (file_id, account)
) WITHOUT ROWID;

-- The newest balance an account system returned in an online answer.
CREATE TABLE online_balances (
    institution     TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    available_minor INTEGER NOT NULL,
    as_of_us        INTEGER NOT NULL,
    PRIMARY KEY (institution, account)
) WITHOUT ROWID;

-- Money movements cardhub approved (or learned of), per account: what the
-- shadow balance subtracts (debits, holds) or adds (confirmed credits)
-- after its balance's as-of time.
CREATE TABLE movements (
    institution     TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    txn_id          INTEGER NOT NULL,             -- the journal row that made it
    kind            TEXT    NOT NULL,             -- hold | debit | credit
    amount_minor    INTEGER NOT NULL,             -- as approved
    remaining_minor INTEGER NOT NULL,             -- after reversals and completion
    approved_by     TEXT    NOT NULL,             -- account_system | stand_in | switch
    created_us      INTEGER NOT NULL,
    expires_us      INTEGER,                      -- holds only
    state           TEXT    NOT NULL,             -- open | completed | reversed | pending (credit) | confirmed (credit)
    PRIMARY KEY (institution, account, txn_id)     -- one B-tree: an account's movements together
) WITHOUT ROWID;

-- Store-and-forward: what an account system must still be told, in order.
CREATE TABLE saf_queue (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    institution     TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    operation       TEXT    NOT NULL,             -- advice | reverse
    txn_id          INTEGER NOT NULL,             -- the journal row it delivers (the request is rebuilt from it)
    state           TEXT    NOT NULL,             -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    last_error      TEXT,
    enqueued_us     INTEGER NOT NULL,
    delivered_us    INTEGER
);
-- What replay reads: undelivered items per institution and account, in order.
CREATE INDEX saf_open ON saf_queue (institution, account, seq) WHERE state != 'delivered';
