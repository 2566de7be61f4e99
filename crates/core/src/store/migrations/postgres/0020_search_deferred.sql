-- PostgreSQL twin of ../0020_search_deferred.sql: the same tables, columns, constraints and
-- indexes; INTEGER is BIGINT, BLOB is BYTEA, an id the store leaves out is
-- an identity column, `user` is quoted. scripts/check-pg-schema compares them.
-- Back-office search by card and by account, indexed in bulk instead of on
-- every journal insert (see the SQLite file for why). A journal row with a
-- card or an account is listed in `journal_unindexed` by the trigger below;
-- the hub moves the listed rows into the search tables every second
-- (`backoffice::search_index`); a search reads both.
CREATE TABLE journal_by_card (
    pan_hash BYTEA  NOT NULL,
    txn_id   BIGINT NOT NULL,
    PRIMARY KEY (pan_hash, txn_id)
);

CREATE TABLE journal_by_account (
    account TEXT   NOT NULL,
    txn_id  BIGINT NOT NULL,
    PRIMARY KEY (account, txn_id)
);

-- Journal rows not yet in the search tables.
CREATE TABLE journal_unindexed (
    txn_id BIGINT PRIMARY KEY
);

CREATE FUNCTION journal_unindexed_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO journal_unindexed (txn_id) VALUES (NEW.txn_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER journal_unindexed_row AFTER INSERT ON journal
FOR EACH ROW WHEN (NEW.pan_hash IS NOT NULL OR NEW.account IS NOT NULL)
EXECUTE FUNCTION journal_unindexed_row();

INSERT INTO journal_by_card (pan_hash, txn_id)
SELECT pan_hash, txn_id FROM journal WHERE pan_hash IS NOT NULL;
INSERT INTO journal_by_account (account, txn_id)
SELECT account, txn_id FROM journal WHERE account IS NOT NULL;

DROP INDEX journal_card;
DROP INDEX journal_account;
