-- A card account's hold totals, kept in the same transaction as its holds
-- (src/prepaid/holds.rs), so an authorization reads them from the account's
-- row instead of summing its holds (and Ledger::audit checks them against
-- the holds). Holds move no money: the postings stay the only truth of a
-- balance.
--
-- held:          the remaining amounts of its holds in state 'open' (an
--                open hold past its expiry, not yet marked expired, is
--                still in it; the ledger subtracts those when it reads).
-- day_start_us:  the UTC day (its first microsecond) of its newest hold;
-- day_amount,    the amount and number of its holds created that day
-- day_count:     and not released (what the programme's daily limits count).
ALTER TABLE prepaid_accounts ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prepaid_accounts ADD COLUMN day_start_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prepaid_accounts ADD COLUMN day_amount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prepaid_accounts ADD COLUMN day_count INTEGER NOT NULL DEFAULT 0;

UPDATE prepaid_accounts SET
    held = COALESCE((SELECT SUM(h.remaining) FROM prepaid_holds h
                     WHERE h.account = prepaid_accounts.id AND h.state = 'open'), 0),
    day_start_us = COALESCE((SELECT MAX(h.created_at_us) FROM prepaid_holds h
                             WHERE h.account = prepaid_accounts.id) / 86400000000 * 86400000000, 0)
WHERE kind = 'card';

UPDATE prepaid_accounts SET
    day_amount = COALESCE((SELECT SUM(h.amount) FROM prepaid_holds h
                           WHERE h.account = prepaid_accounts.id AND h.state <> 'released'
                             AND h.created_at_us >= prepaid_accounts.day_start_us
                             AND h.created_at_us < prepaid_accounts.day_start_us + 86400000000), 0),
    day_count = (SELECT COUNT(*) FROM prepaid_holds h
                 WHERE h.account = prepaid_accounts.id AND h.state <> 'released'
                   AND h.created_at_us >= prepaid_accounts.day_start_us
                   AND h.created_at_us < prepaid_accounts.day_start_us + 86400000000)
WHERE kind = 'card';

-- The daily sums are read from the columns now: the index that summed
-- them is one write less per hold.
DROP INDEX prepaid_holds_day;
