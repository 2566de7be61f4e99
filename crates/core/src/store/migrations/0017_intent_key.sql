-- The duplicate key of the calls under way (the journal's, migration 0007):
-- before an online call the hub looks the request's key up in the journal
-- and in the call intents, in the transaction that records its own intent,
-- so a retransmission that reaches another instance (or comes after the
-- seen-keys filter forgot its key) is answered as a repeat instead of
-- being sent to the account system a second time. Not unique: the lookup
-- decides (SQLite's single writer, PostgreSQL's SERIALIZABLE transactions
-- make it exact), and intents a stopped hub left stay valid.
CREATE INDEX call_intents_duplicate_key ON call_intents (transmission_time, stan, acquirer, terminal, mti);
