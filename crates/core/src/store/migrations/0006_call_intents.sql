-- Online calls under way: the row the journal gets should the hub stop
-- before the call's decision is journaled (written before the call, removed
-- in the decision's transaction). At start every row left is an outcome
-- nobody knows: it moves to the journal as a 96 and a Reverse is queued.
-- Same columns as the journal.
CREATE TABLE call_intents (
    txn_id              INTEGER PRIMARY KEY,
    entry               TEXT    NOT NULL,
    received_at_us      INTEGER NOT NULL,
    business_day        TEXT    NOT NULL,
    switch              TEXT    NOT NULL,
    mti                 TEXT    NOT NULL,
    is_repeat           INTEGER NOT NULL,
    kind                TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    pan_hash            BLOB,
    pan_masked          TEXT,
    account             TEXT,
    institution         TEXT,
    amount_minor        INTEGER NOT NULL,
    currency            INTEGER NOT NULL,
    transmission_time   TEXT,
    stan                TEXT,
    acquirer            TEXT,
    rrn                 TEXT,
    terminal            TEXT,
    merchant            TEXT,
    mcc                 INTEGER,
    response_code       TEXT    NOT NULL,
    auth_id             TEXT,
    decided_by          TEXT    NOT NULL,
    adapter             TEXT,
    raw_response_code   TEXT,
    reason              TEXT,
    available_minor     INTEGER,
    ledger_minor        INTEGER,
    counted_minor       INTEGER NOT NULL DEFAULT 0,
    counted_count       INTEGER NOT NULL DEFAULT 0,
    original_txn_id     INTEGER,
    latency_us          INTEGER NOT NULL
);
