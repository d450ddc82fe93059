-- Central refused a batch (sync contract v2, docs/mqtt.md "Refusals"): its records are
-- invalid for central (or its database refused them) and will never be stored, so
-- sending them again would be in vain. Their rows become 'refused' (kept, never sent
-- again, never pruned, shown in `edge outbox status` and telemetry) with central's
-- reason in `refusal`. SQLite cannot change a CHECK constraint in place: the table is
-- rebuilt with the same rows and indexes.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL CHECK (stream IN ('records', 'telemetry', 'bulk')),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    kind TEXT NOT NULL CHECK (length(kind) > 0),
    record_id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'confirmed', 'refused')),
    batch_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at TEXT NOT NULL,
    sent_at TEXT,
    confirmed_at TEXT,
    refusal TEXT,
    refused_at TEXT,
    UNIQUE (stream, seq)
);
INSERT INTO outbox_new (id, stream, seq, kind, record_id, body, status, batch_id, attempts,
                        created_at, sent_at, confirmed_at)
SELECT id, stream, seq, kind, record_id, body, status, batch_id, attempts, created_at, sent_at,
       confirmed_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_stream_status ON outbox(stream, status, seq);
CREATE INDEX outbox_record ON outbox(record_id);
CREATE INDEX outbox_confirmed_at ON outbox(confirmed_at) WHERE status = 'confirmed';
