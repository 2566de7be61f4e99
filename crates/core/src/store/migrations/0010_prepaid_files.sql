-- Prepaid files and attestation (src/prepaid/load_file.rs, export.rs,
-- attestation.rs): the merchant of a purchase, for the accounting export,
-- and the append-only attestation record of small-purchase purchases.

-- The card acceptor of an authorization (DE 42 as the switch sent it),
-- kept on its hold and on the entries that post or undo it.
ALTER TABLE prepaid_holds ADD COLUMN merchant TEXT;
ALTER TABLE prepaid_entries ADD COLUMN merchant TEXT;

-- The accounting export reads one UTC day of entries at a time.
CREATE INDEX prepaid_entries_booked ON prepaid_entries (booked_at_us);

-- Attestations and disputes of purchases (capture entries of small-purchase
-- cards) by orderer users. Append-only: the latest row of an entry is its
-- state; rows are never updated or deleted (the triggers refuse it).
CREATE TABLE prepaid_attestations (
    id              INTEGER PRIMARY KEY,
    entry           INTEGER NOT NULL REFERENCES prepaid_entries (id),
    action          TEXT    NOT NULL CHECK (action IN ('attest', 'dispute')),
    user            TEXT    NOT NULL,
    -- attest: the purpose or cost centre; dispute: the reason.
    comment         TEXT    NOT NULL,
    recorded_at_us  INTEGER NOT NULL
);

CREATE INDEX prepaid_attestations_entry ON prepaid_attestations (entry, id);

CREATE TRIGGER prepaid_attestations_no_update BEFORE UPDATE ON prepaid_attestations
BEGIN
    SELECT RAISE(ABORT, 'prepaid_attestations is append-only');
END;

CREATE TRIGGER prepaid_attestations_no_delete BEFORE DELETE ON prepaid_attestations
BEGIN
    SELECT RAISE(ABORT, 'prepaid_attestations is append-only');
END;
