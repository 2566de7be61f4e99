-- A card's available balance and its daily limits are sums over its holds,
-- read by every prepaid authorization: the two indexes carry the summed
-- column, so the sums read the index alone instead of each hold's row.
DROP INDEX prepaid_holds_open;
CREATE INDEX prepaid_holds_open ON prepaid_holds (account, state, expires_at_us, remaining);

DROP INDEX prepaid_holds_day;
CREATE INDEX prepaid_holds_day ON prepaid_holds (account, created_at_us, state, amount);
