-- Back-office search by card and by account, indexed in bulk instead of on
-- every journal insert. With one index `(key, txn_id)` on the journal per
-- key, every authorization dirtied a page of each at a place of its own
-- (one per card, one per account): a sustained flood wrote several pages
-- of the write-ahead log per request and halved the hub's throughput
-- (docs/performance.md, "Search indexed in bulk").
--
-- A journal row with a card or an account is listed in `journal_unindexed`
-- by the trigger below, in the transaction that writes it. Every second the
-- hub moves what is listed into the two search tables in one transaction
-- (`backoffice::search_index`), so a page of them is written once for all
-- the rows of that second that land on it. A search reads the search table
-- and the rows still listed, so it sees every row the moment it is
-- journaled, whether or not the hub runs.
CREATE TABLE journal_by_card (
    pan_hash BLOB    NOT NULL,
    txn_id   INTEGER NOT NULL,
    PRIMARY KEY (pan_hash, txn_id)
) WITHOUT ROWID;

CREATE TABLE journal_by_account (
    account TEXT    NOT NULL,
    txn_id  INTEGER NOT NULL,
    PRIMARY KEY (account, txn_id)
) WITHOUT ROWID;

-- Journal rows not yet in the search tables.
CREATE TABLE journal_unindexed (
    txn_id INTEGER PRIMARY KEY
);

CREATE TRIGGER journal_unindexed_row AFTER INSERT ON journal
WHEN NEW.pan_hash IS NOT NULL OR NEW.account IS NOT NULL
BEGIN
    INSERT INTO journal_unindexed (txn_id) VALUES (NEW.txn_id);
END;

INSERT INTO journal_by_card (pan_hash, txn_id)
SELECT pan_hash, txn_id FROM journal WHERE pan_hash IS NOT NULL;
INSERT INTO journal_by_account (account, txn_id)
SELECT account, txn_id FROM journal WHERE account IS NOT NULL;

DROP INDEX journal_card;
DROP INDEX journal_account;
