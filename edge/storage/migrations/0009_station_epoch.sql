-- The database's epoch (sync contract v2, docs/mqtt.md): 16 random hex digits made
-- once, when this migration runs (on a new database or on an existing one). Every
-- batch carries it, so central can tell this database's seqs from those of another
-- database that used the same site id (an SD card replaced, a second station set up
-- with the same id) instead of dropping them as duplicates. One row, never changed.
CREATE TABLE station_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL CHECK (length(epoch) = 16 AND epoch NOT GLOB '*[^0-9a-f]*')
);
INSERT INTO station_epoch(id, epoch) VALUES (1, lower(hex(randomblob(8))));
