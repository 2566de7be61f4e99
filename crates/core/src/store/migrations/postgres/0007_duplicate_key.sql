-- PostgreSQL twin of ../0007_duplicate_key.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- One duplicate key everywhere (MTI without the repeat digit, DE 7, 11, 32,
-- 41: `SwitchKeys`' equality): a request, or an orphan reversal, is
-- journaled at most once per key. Several hubs sharing a store (PostgreSQL)
-- will rely on it; one hub relies on it when a repeat comes after the
-- seen-keys filter forgot its key.
--
-- Rows written before this index, whose key repeats an earlier row's (a
-- repeat that came after the filter's window was decided again), are kept
-- under their own entry kind so the key can be unique.
UPDATE journal SET entry = 'repeated_request'
WHERE entry IN ('request', 'orphan_reversal')
  AND EXISTS (
    SELECT 1 FROM journal f
    WHERE f.entry IN ('request', 'orphan_reversal')
      AND f.transmission_time IS NOT DISTINCT FROM journal.transmission_time
      AND f.stan IS NOT DISTINCT FROM journal.stan
      AND f.acquirer IS NOT DISTINCT FROM journal.acquirer
      AND f.terminal IS NOT DISTINCT FROM journal.terminal
      AND f.mti = journal.mti
      AND f.txn_id < journal.txn_id
  );
CREATE UNIQUE INDEX journal_duplicate_key ON journal (transmission_time, stan, acquirer, terminal, mti)
WHERE entry IN ('request', 'orphan_reversal');
