-- PostgreSQL twin of ../0011_prepaid_daily_limits.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- A programme's optional per-card daily limits on purchases and cash
-- (prepaid/limits.rs): NULL is no limit. Counted from the card's holds of
-- the UTC day that were not released.
ALTER TABLE prepaid_programmes ADD COLUMN daily_amount BIGINT CHECK (daily_amount > 0);
ALTER TABLE prepaid_programmes ADD COLUMN daily_count BIGINT CHECK (daily_count > 0);

CREATE INDEX prepaid_holds_day ON prepaid_holds (account, created_at_us);
