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
    checks          INTEGER NOT NULL,
    PRIMARY KEY (institution, account)
) WITHOUT ROWID;

-- A card's daily totals per business day and limit channel (atm | pos), as
-- every instance counts them: the sum of the journal's counted_minor and
-- counted_count for the card, the day and the channel (other counts as
-- pos), plus the reservations of online calls under way (their call
-- intents carry them). `stand_in_*`: the part of stand-in rows, for
-- stand-in's own (offline) limits. Moved in the transaction of each
-- journal row; filled here from the journal already written.
CREATE TABLE daily_totals (
    pan_hash        BLOB    NOT NULL,
    business_day    TEXT    NOT NULL,             -- YYYY-MM-DD
    channel         TEXT    NOT NULL,             -- atm | pos
    amount_minor    INTEGER NOT NULL,
    txn_count       INTEGER NOT NULL,
    stand_in_minor  INTEGER NOT NULL,
    stand_in_count  INTEGER NOT NULL,
    PRIMARY KEY (pan_hash, business_day, channel)
) WITHOUT ROWID;

INSERT INTO daily_totals (pan_hash, business_day, channel, amount_minor, txn_count, stand_in_minor, stand_in_count)
SELECT pan_hash, business_day, CASE WHEN channel = 'atm' THEN 'atm' ELSE 'pos' END,
       SUM(counted_minor), SUM(counted_count),
       SUM(CASE WHEN decided_by = 'stand_in' THEN counted_minor ELSE 0 END),
       SUM(CASE WHEN decided_by = 'stand_in' THEN counted_count ELSE 0 END)
FROM journal
WHERE pan_hash IS NOT NULL AND (counted_minor != 0 OR counted_count != 0)
GROUP BY pan_hash, business_day, CASE WHEN channel = 'atm' THEN 'atm' ELSE 'pos' END;
