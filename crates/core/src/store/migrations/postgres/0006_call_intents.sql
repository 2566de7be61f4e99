-- PostgreSQL twin of ../0006_call_intents.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- Online calls under way: the row the journal gets should the hub stop
-- before the call's decision is journaled (written before the call, removed
-- in the decision's transaction). At start every row left is an outcome
-- nobody knows: it moves to the journal as a 96 and a Reverse is queued.
-- Same columns as the journal.
CREATE TABLE call_intents (
    txn_id              BIGINT  PRIMARY KEY,
    entry               TEXT    NOT NULL,
    received_at_us      BIGINT  NOT NULL,
    business_day        TEXT    NOT NULL,
    switch              TEXT    NOT NULL,
    mti                 TEXT    NOT NULL,
    is_repeat           BIGINT  NOT NULL,
    kind                TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    pan_hash            BYTEA,
    pan_masked          TEXT,
    account             TEXT,
    institution         TEXT,
    amount_minor        BIGINT  NOT NULL,
    currency            BIGINT  NOT NULL,
    transmission_time   TEXT,
    stan                TEXT,
    acquirer            TEXT,
    rrn                 TEXT,
    terminal            TEXT,
    merchant            TEXT,
    mcc                 BIGINT,
    response_code       TEXT    NOT NULL,
    auth_id             TEXT,
    decided_by          TEXT    NOT NULL,
    adapter             TEXT,
    raw_response_code   TEXT,
    reason              TEXT,
    available_minor     BIGINT,
    ledger_minor        BIGINT,
    counted_minor       BIGINT  NOT NULL DEFAULT 0,
    counted_count       BIGINT  NOT NULL DEFAULT 0,
    original_txn_id     BIGINT,
    latency_us          BIGINT  NOT NULL
);
