-- PostgreSQL twin of ../0004_search.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- Back-office search (`cardhub txn search`, POST /api/transactions/search).
-- Each index pairs one search key with txn_id, so "this key, newest first,
-- in a time range" is one backward range scan (txn_id is time-ordered) and
-- pagination by txn_id needs no sort. Filters without an index of their own
-- (institution, response code, decided-by) narrow these scans or a range of
-- the primary key. Every index costs each insert: docs/back-office.md has
-- the measured price.
CREATE INDEX journal_card     ON journal (pan_hash, txn_id) WHERE pan_hash IS NOT NULL;
CREATE INDEX journal_account  ON journal (account, txn_id)  WHERE account IS NOT NULL;
CREATE INDEX journal_terminal ON journal (terminal, txn_id) WHERE terminal IS NOT NULL;
CREATE INDEX journal_rrn      ON journal (rrn, txn_id)      WHERE rrn IS NOT NULL;
CREATE INDEX journal_stan     ON journal (stan, txn_id)     WHERE stan IS NOT NULL;
-- A transaction's store-and-forward items (`txn show`), without a scan of
-- the queue's whole history.
CREATE INDEX saf_txn ON saf_queue (txn_id);
