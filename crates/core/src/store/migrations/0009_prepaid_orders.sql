-- Prepaid card orders (src/prepaid/orders): the card range each programme
-- issues from, orders of N cards, their cards, and PIN requests with the
-- PIN mailers that carried them. No clear PAN is kept here: a card is named
-- by its ledger card account (the card registry keeps the PAN, encrypted)
-- and its masked form. No PIN is kept anywhere: a PIN request is only a
-- reference for the card producer's HSM. Written only by
-- src/prepaid/orders/db.rs, one store job per operation.

-- The card range of a programme: PANs are `prefix`, a serial and a Luhn
-- check digit, `pan_length` digits in all, issued in serial order and never
-- reused (a PAN already in the card registry is skipped).
CREATE TABLE prepaid_card_ranges (
    programme       TEXT    PRIMARY KEY REFERENCES prepaid_programmes (id),
    prefix          TEXT    NOT NULL CHECK (length(prefix) BETWEEN 6 AND 11),
    pan_length      INTEGER NOT NULL CHECK (pan_length BETWEEN 12 AND 19),
    -- The card's expiry is the month `validity_months` after its order's.
    validity_months INTEGER NOT NULL CHECK (validity_months BETWEEN 1 AND 120),
    institution     TEXT    NOT NULL,                   -- [[institution]] id (mode prepaid)
    profile         TEXT    NOT NULL,                   -- [limits.<profile>]
    -- The next serial to try; only grows while prefix and length stay.
    next_serial     INTEGER NOT NULL CHECK (next_serial >= 0),
    updated_at_us   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE prepaid_orders (
    id              INTEGER PRIMARY KEY,
    -- The orderer's idempotency key: a repeat creates nothing.
    reference       TEXT    NOT NULL UNIQUE,
    orderer         TEXT    NOT NULL REFERENCES prepaid_orderers (id),
    programme       TEXT    NOT NULL REFERENCES prepaid_programmes (id),
    personal        INTEGER NOT NULL CHECK (personal IN (0, 1)),
    count           INTEGER NOT NULL CHECK (count > 0),
    -- `active` is not stored: a delivered order is active once one of its
    -- cards has a load booked.
    state           TEXT    NOT NULL CHECK (state IN ('ordered', 'produced', 'delivered')),
    ordered_at_us   INTEGER NOT NULL,
    produced_at_us  INTEGER,
    delivered_at_us INTEGER
);

CREATE INDEX prepaid_orders_orderer ON prepaid_orders (orderer, id);

CREATE TABLE prepaid_order_cards (
    order_id        INTEGER NOT NULL REFERENCES prepaid_orders (id),
    sequence        INTEGER NOT NULL CHECK (sequence > 0),   -- 1..count
    account         INTEGER NOT NULL UNIQUE REFERENCES prepaid_accounts (id),
    pan_masked      TEXT    NOT NULL,                        -- first 6 + last 4
    expiry          TEXT    NOT NULL,                        -- YYMM
    holder          TEXT,                                    -- personal cards only
    PRIMARY KEY (order_id, sequence)
) WITHOUT ROWID;

-- Written PIN mailer files.
CREATE TABLE prepaid_pin_mailers (
    id              INTEGER PRIMARY KEY,
    count           INTEGER NOT NULL CHECK (count > 0),
    created_at_us   INTEGER NOT NULL
);

-- One PIN for the producer's HSM to generate: each new card's (`issue`) and
-- each reorder (`reorder`). `channel`: `card` (in the card's letter: a flag
-- in the production file) or `mailer` (a PIN mailer record; pending while
-- `mailer` is NULL).
CREATE TABLE prepaid_pin_requests (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('issue', 'reorder')),
    channel         TEXT    NOT NULL CHECK (channel IN ('card', 'mailer')),
    mailer          INTEGER REFERENCES prepaid_pin_mailers (id),
    requested_at_us INTEGER NOT NULL,
    FOREIGN KEY (order_id, sequence) REFERENCES prepaid_order_cards (order_id, sequence)
);

CREATE INDEX prepaid_pin_requests_pending ON prepaid_pin_requests (channel, mailer);
CREATE INDEX prepaid_pin_requests_card ON prepaid_pin_requests (order_id, sequence);

-- An order's cards with a load booked (its `active` state, its counts).
CREATE INDEX prepaid_entries_card ON prepaid_entries (card, kind);
