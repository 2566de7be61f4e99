-- The prepaid ledger (src/prepaid): orderers, their programmes, accounts,
-- double-entry postings and purchase holds. Amounts are signed integer
-- minor units of the account's currency; never floats.
--
-- Sign convention: a card account's balance is what its holder may spend
-- (positive); an orderer's pooled funding account is credit-normal (its
-- liability to the orderer is minus its balance); the settlement account
-- per currency is the bank's clearing side. Every entry balances: its
-- postings on pooled and settlement accounts sum to zero, and its card
-- postings of each orderer sum to minus that orderer's pooled posting, so
-- the sum of an orderer's card balances always equals its pooled
-- liability. Written only by src/prepaid/db.rs, one store job per
-- operation.
CREATE TABLE prepaid_orderers (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,                   -- printed on every card
    funding_account TEXT    NOT NULL,                   -- its bank account number
    created_at_us   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE prepaid_programmes (
    id              TEXT    PRIMARY KEY,
    orderer         TEXT    NOT NULL REFERENCES prepaid_orderers (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('social-client', 'small-purchase')),
    currency        INTEGER NOT NULL,                   -- ISO 4217 numeric
    max_balance     INTEGER NOT NULL CHECK (max_balance > 0),
    pin_delivery    TEXT    NOT NULL CHECK (pin_delivery IN ('with-card', 'separately')),
    created_at_us   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE prepaid_accounts (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('card', 'pooled', 'settlement')),
    -- card: the card registry's account; pooled: the orderer id;
    -- settlement: the currency's numeric code.
    name            TEXT    NOT NULL,
    orderer         TEXT    REFERENCES prepaid_orderers (id),
    programme       TEXT    REFERENCES prepaid_programmes (id),
    currency        INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replaced')),
    replaced_by     INTEGER REFERENCES prepaid_accounts (id),
    -- Sum of this account's postings, kept in the same transaction as them
    -- (checked by Ledger::audit).
    balance         INTEGER NOT NULL DEFAULT 0,
    created_at_us   INTEGER NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE prepaid_entries (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('load', 'refund', 'capture', 'reversal', 'move', 'replace')),
    -- The operation's idempotency key (cardhub's transaction id, or the
    -- caller's): a repeat books nothing twice.
    reference       TEXT    NOT NULL UNIQUE,
    -- The card account the operation was for (a move: the card paying).
    card            INTEGER NOT NULL REFERENCES prepaid_accounts (id),
    -- A reversal's load entry; a capture's hold is in prepaid_holds.
    original        INTEGER REFERENCES prepaid_entries (id),
    -- How much of this entry later reversals undid (loads and refunds).
    reversed        INTEGER NOT NULL DEFAULT 0,
    booked_at_us    INTEGER NOT NULL
);

CREATE TABLE prepaid_postings (
    entry           INTEGER NOT NULL REFERENCES prepaid_entries (id),
    account         INTEGER NOT NULL REFERENCES prepaid_accounts (id),
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (entry, account)
) WITHOUT ROWID;

CREATE INDEX prepaid_postings_account ON prepaid_postings (account, entry);

-- Purchase and cash authorizations: money set aside, not yet posted.
CREATE TABLE prepaid_holds (
    id              INTEGER PRIMARY KEY,
    reference       TEXT    NOT NULL UNIQUE,            -- the authorization's transaction id
    account         INTEGER NOT NULL REFERENCES prepaid_accounts (id),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    -- Still set aside while open (partial reversals lower it).
    remaining       INTEGER NOT NULL CHECK (remaining >= 0),
    -- Posted by its capture; later reversals of the purchase lower
    -- `captured - refunded`.
    captured        INTEGER NOT NULL DEFAULT 0,
    refunded        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'captured', 'released', 'expired')),
    created_at_us   INTEGER NOT NULL,
    expires_at_us   INTEGER NOT NULL
);

CREATE INDEX prepaid_holds_open ON prepaid_holds (account, state, expires_at_us);
