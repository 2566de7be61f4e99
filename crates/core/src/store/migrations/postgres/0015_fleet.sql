-- PostgreSQL twin of ../0015_fleet.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- Several hub instances on one store: who is running under which instance
-- number, the leases that make a job run on one instance of the fleet, and a
-- version per institution state so every instance sees each change.

-- One row per instance number (0-15) in use: a second live process with the
-- same number is refused; a row whose heartbeat is older than the TTL is a
-- dead instance's and its number may be taken.
CREATE TABLE fleet_members (
    instance        BIGINT  PRIMARY KEY,          -- the number in every transaction id it hands out
    holder          TEXT    NOT NULL,             -- this run of the process: instance/host/pid/random
    host            TEXT    NOT NULL,
    pid             BIGINT  NOT NULL,
    started_us      BIGINT  NOT NULL,
    heartbeat_us    BIGINT  NOT NULL
);

-- Leases: one holder at a time per name until expires_at_us; fence grows by
-- one at every change of holder, and fenced writes check it.
CREATE TABLE fleet_leases (
    name            TEXT    PRIMARY KEY,          -- saf/<institution> | probe/<institution>
    holder          TEXT    NOT NULL,
    fence           BIGINT  NOT NULL,
    expires_at_us   BIGINT  NOT NULL
);

-- Bumped by every state or pause change: instances apply a row whose
-- version is above the one they last applied.
ALTER TABLE institution_state ADD COLUMN version BIGINT  NOT NULL DEFAULT 0;
