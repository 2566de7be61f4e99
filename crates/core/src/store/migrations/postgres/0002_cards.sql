-- PostgreSQL twin of ../0002_cards.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- The card registry. The PAN is never stored in clear: `pan_hash` (keyed
-- HMAC-SHA256) finds a card, `pan_masked` / `pan_last4` show it,
-- `pan_encrypted` (AES-256-GCM, format byte 0x01 || nonce || ciphertext+tag)
-- keeps it for when it must be sent on. Written only by card imports and
-- card changes (src/cards/registry.rs).
CREATE TABLE cards (
    pan_hash        BYTEA   PRIMARY KEY,          -- 32 bytes
    pan_masked      TEXT    NOT NULL,             -- first 6 + last 4
    pan_last4       TEXT    NOT NULL,
    pan_encrypted   BYTEA   NOT NULL,
    expiry          TEXT    NOT NULL,             -- YYMM
    status          TEXT    NOT NULL,             -- active | inactive | blocked | lost | stolen | expired | closed
    account         TEXT    NOT NULL,
    institution     TEXT    NOT NULL,             -- [[institution]] id
    currency        BIGINT  NOT NULL,             -- ISO 4217 numeric
    profile         TEXT    NOT NULL,             -- [limits.<profile>]
    product         TEXT    NOT NULL,             -- debit | prepaid
    updated_at_us   BIGINT  NOT NULL              -- Unix time, microseconds, of the last change
);

CREATE INDEX cards_account ON cards (account);

-- One row, bumped by every transaction that changes `cards`: hub processes
-- reload their in-memory card snapshot when it moves.
CREATE TABLE card_registry_version (
    id              BIGINT  PRIMARY KEY CHECK (id = 1),
    version         BIGINT  NOT NULL
);
INSERT INTO card_registry_version (id, version) VALUES (1, 0);
