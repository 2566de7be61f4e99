-- At most one current balance file per institution, kept by the database
-- itself: the flip that makes a file current (`standin::balances`) runs in
-- one writer job — SQLite's single writer, PostgreSQL's SERIALIZABLE
-- transactions — so two instances applying files for one institution at
-- once cannot both leave theirs current; this index makes that a refusal
-- the store enforces, not only an outcome the isolation gives. A store
-- that somehow holds several keeps the newest (the highest file id) and
-- the others become superseded first.
UPDATE balance_files SET state = 'superseded'
 WHERE state = 'current'
   AND file_id NOT IN (SELECT MAX(file_id) FROM balance_files WHERE state = 'current' GROUP BY institution);
CREATE UNIQUE INDEX balance_files_one_current ON balance_files (institution) WHERE state = 'current';
