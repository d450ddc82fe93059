-- The downlink (sync contract v3, docs/mqtt.md "Downlink"): what central sends down to
-- this point (orders, products, tracking-number blocks) in batches numbered 1, 2, 3...
-- per site. edge/sync/downlink.py applies each batch in one transaction with this
-- state, so a record is applied exactly once, in order, whatever the link does.
--
-- downlink_state: one row. epoch: central's database whose seqs these are (set by the
-- first batch applied; a batch of another epoch is ignored and kept in foreign_epoch /
-- foreign_at for telemetry and `edge downlink status`); applied_upto: every seq up to
-- it is applied (committed), the acknowledgement sent to central.
CREATE TABLE downlink_state (
    stream TEXT PRIMARY KEY CHECK (stream = 'down'),
    epoch TEXT CHECK (epoch IS NULL OR (length(epoch) = 16 AND epoch NOT GLOB '*[^0-9a-f]*')),
    applied_upto INTEGER NOT NULL DEFAULT 0 CHECK (applied_upto >= 0),
    applied_at TEXT,
    foreign_epoch TEXT,
    foreign_at TEXT
);
INSERT INTO downlink_state (stream) VALUES ('down');

-- downlink_refused: records this point could not apply (an unknown type, a handler's
-- refusal). Kept with the reason, never applied; their seqs count as applied so the
-- records after them are not held up.
CREATE TABLE downlink_refused (
    epoch TEXT NOT NULL,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    kind TEXT NOT NULL,
    record_id TEXT,
    reason TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    refused_at TEXT NOT NULL,
    PRIMARY KEY (epoch, seq)
);
