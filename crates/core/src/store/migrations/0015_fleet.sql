-- Several hub instances on one store: who is running under which instance
-- number, the leases that make a job run on one instance of the fleet, and a
-- version per institution state so every instance sees each change.

-- One row per instance number (0-15) in use: a second live process with the
-- same number is refused; a row whose heartbeat is older than the TTL is a
-- dead instance's and its number may be taken.
CREATE TABLE fleet_members (
    instance        INTEGER PRIMARY KEY,          -- the number in every transaction id it hands out
    holder          TEXT    NOT NULL,             -- this run of the process: instance/host/pid/random
    host            TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    started_us      INTEGER NOT NULL,
    heartbeat_us    INTEGER NOT NULL
);

-- Leases: one holder at a time per name until expires_at_us; fence grows by
-- one at every change of holder, and fenced writes check it.
CREATE TABLE fleet_leases (
    name            TEXT    PRIMARY KEY,          -- saf/<institution> | probe/<institution>
    holder          TEXT    NOT NULL,
    fence           INTEGER NOT NULL,
    expires_at_us   INTEGER NOT NULL
);

-- Bumped by every state or pause change: instances apply a row whose
-- version is above the one they last applied.
ALTER TABLE institution_state ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
