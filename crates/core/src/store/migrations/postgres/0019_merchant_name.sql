-- PostgreSQL twin of ../0019_merchant_name.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- The card acceptor's name and location (DE 43 as the switch sent it,
-- trimmed; never card data): on the journal row of a request (and on the
-- call intent, which has the journal's columns), and on a prepaid hold and
-- the entries that post or undo it, for the accounting export, as DE 42's
-- `merchant` is (0010).
ALTER TABLE journal ADD COLUMN merchant_name TEXT;
ALTER TABLE call_intents ADD COLUMN merchant_name TEXT;
ALTER TABLE prepaid_holds ADD COLUMN merchant_name TEXT;
ALTER TABLE prepaid_entries ADD COLUMN merchant_name TEXT;
