-- PostgreSQL twin of ../0013_prepaid_hold_sums.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- A card's available balance and its daily limits are sums over its holds,
-- read by every prepaid authorization: the two indexes carry the summed
-- column, so the sums read the index alone instead of each hold's row.
DROP INDEX prepaid_holds_open;
CREATE INDEX prepaid_holds_open ON prepaid_holds (account, state, expires_at_us, remaining);

DROP INDEX prepaid_holds_day;
CREATE INDEX prepaid_holds_day ON prepaid_holds (account, created_at_us, state, amount);
