-- PostgreSQL twin of ../0001_journal.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- The journal: one row per message the hub decided or recorded, appended,
-- never updated. Card numbers appear only as a keyed hash, the last four
-- digits and the masked form (first 6 + last 4); no PIN block, no track data.
CREATE TABLE journal (
    txn_id              BIGINT  PRIMARY KEY,          -- cardhub's transaction id: time-ordered (ms << 20 | counter)
    entry               TEXT    NOT NULL,             -- request | retransmission | late_result | orphan_reversal
    received_at_us      BIGINT  NOT NULL,             -- Unix time, microseconds
    business_day        TEXT    NOT NULL,             -- YYYY-MM-DD, for daily limits
    switch              TEXT    NOT NULL,             -- [[switch]] name
    mti                 TEXT    NOT NULL,             -- without the repeat digit
    is_repeat           BIGINT  NOT NULL,
    kind                TEXT    NOT NULL,             -- purchase | cash | balance_inquiry | load | refund (of the original, for reversals)
    channel             TEXT    NOT NULL,             -- atm | pos | other
    pan_hash            BYTEA,
    pan_masked          TEXT,
    account             TEXT,
    institution         TEXT,
    amount_minor        BIGINT  NOT NULL,
    currency            BIGINT  NOT NULL,
    transmission_time   TEXT,                         -- DE 7
    stan                TEXT,                         -- DE 11
    acquirer            TEXT,                         -- DE 32
    rrn                 TEXT,                         -- DE 37
    terminal            TEXT,                         -- DE 41
    merchant            TEXT,                         -- DE 42
    mcc                 BIGINT,                       -- DE 18
    response_code       TEXT    NOT NULL,             -- DE 39 answered
    auth_id             TEXT,                         -- DE 38
    decided_by          TEXT    NOT NULL,             -- account_system | stand_in | hub_rule
    adapter             TEXT,
    raw_response_code   TEXT,                         -- the account system's own code
    reason              TEXT,                         -- why, in words
    available_minor     BIGINT,
    ledger_minor        BIGINT,
    counted_minor       BIGINT  NOT NULL DEFAULT 0,   -- effect on the daily amount (negative undoes)
    counted_count       BIGINT  NOT NULL DEFAULT 0,   -- effect on the daily count
    original_txn_id     BIGINT,                       -- reversal / retransmission / late result -> original
    latency_us          BIGINT  NOT NULL
);

-- Every index costs each insert; these are the ones the pipeline reads.
-- Retransmission detection and originals of reversals: the switch's keys.
CREATE INDEX journal_switch_keys ON journal (transmission_time, stan, acquirer, terminal);
-- (Daily counters are rebuilt at start from a range of txn_id: no index.)
-- Reversals of a transaction (only rows that refer to another).
CREATE INDEX journal_original ON journal (original_txn_id) WHERE original_txn_id IS NOT NULL;
