-- PostgreSQL twin of ../0016_shared_totals.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- What several hub instances on one store must decide together.
--
-- One row per account stand-in has approved from: the transaction that
-- writes a stand-in approval first updates it, which on PostgreSQL locks
-- the row until commit, so two instances re-check the same account's
-- shadow balance one after the other (SQLite's single writer serialises
-- them anyway). `checks` only counts them.
CREATE TABLE shadow_account_locks (
    institution     TEXT    NOT NULL,
    account         TEXT    NOT NULL,
    checks          BIGINT  NOT NULL,
    PRIMARY KEY (institution, account)
);

-- A card's daily totals per business day and limit channel (atm | pos), as
-- every instance counts them: the sum of the journal's counted_minor and
-- counted_count for the card, the day and the channel (other counts as
-- pos), plus the reservations of online calls under way (their call
-- intents carry them). `stand_in_*`: the part of stand-in rows, for
-- stand-in's own (offline) limits. Moved in the transaction of each
-- journal row; filled here from the journal already written.
CREATE TABLE daily_totals (
    pan_hash        BYTEA   NOT NULL,
    business_day    TEXT    NOT NULL,             -- YYYY-MM-DD
    channel         TEXT    NOT NULL,             -- atm | pos
    amount_minor    BIGINT  NOT NULL,
    txn_count       BIGINT  NOT NULL,
    stand_in_minor  BIGINT  NOT NULL,
    stand_in_count  BIGINT  NOT NULL,
    PRIMARY KEY (pan_hash, business_day, channel)
);

INSERT INTO daily_totals (pan_hash, business_day, channel, amount_minor, txn_count, stand_in_minor, stand_in_count)
SELECT pan_hash, business_day, CASE WHEN channel = 'atm' THEN 'atm' ELSE 'pos' END,
       CAST(SUM(counted_minor) AS BIGINT), CAST(SUM(counted_count) AS BIGINT),
       CAST(SUM(CASE WHEN decided_by = 'stand_in' THEN counted_minor ELSE 0 END) AS BIGINT),
       CAST(SUM(CASE WHEN decided_by = 'stand_in' THEN counted_count ELSE 0 END) AS BIGINT)
FROM journal
WHERE pan_hash IS NOT NULL AND (counted_minor != 0 OR counted_count != 0)
GROUP BY pan_hash, business_day, CASE WHEN channel = 'atm' THEN 'atm' ELSE 'pos' END;
