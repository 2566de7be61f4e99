-- PostgreSQL twin of ../0005_saf_answers.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- SAF items the account system must see under an id of their own: an
-- advice about a transaction it was already asked about online (an
-- Authorize that timed out or failed) is a new request that names the
-- original. NULL: the item is sent under its journal row's id.
ALTER TABLE saf_queue ADD COLUMN request_id BIGINT;
-- The last answer's code, as the adapter mapped it (DE 39) and as the
-- account system sent it, e.g. "94 (913)": why an item was retried or is a
-- dead letter.
ALTER TABLE saf_queue ADD COLUMN last_code TEXT;
