-- Station schema v5: outbox v2 (issue 5, docs/mqtt.md contract v2).
-- Streams with their own sequence: records (lots, producers, products, grades...),
-- telemetry (coalesced) and bulk. seq is 1, 2, 3... per stream with no gaps, assigned
-- in the transaction that commits the record. A row is pending, then sent (the broker's
-- PUBACK), then confirmed (central's ack on <prefix>/<site>/ack); confirmed rows are
-- pruned after a retention period, unconfirmed rows never.
-- body: the record as JSON, without its type (kind) and seq (columns).
-- batch_id: the batch a pending row is claimed by while the link worker publishes it.

ALTER TABLE outbox RENAME TO outbox_v1;  -- v1 rows stay, as they were, for the record
DROP INDEX outbox_pending;

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL CHECK (stream IN ('records', 'telemetry', 'bulk')),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    kind TEXT NOT NULL CHECK (length(kind) > 0),
    record_id TEXT NOT NULL,
    body TEXT NOT NULL CHECK (json_valid(body)),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'confirmed')),
    batch_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at TEXT NOT NULL,
    sent_at TEXT,
    confirmed_at TEXT,
    UNIQUE (stream, seq)
);
CREATE INDEX outbox_stream_status ON outbox(stream, status, seq);
CREATE INDEX outbox_record ON outbox(record_id);
CREATE INDEX outbox_confirmed_at ON outbox(confirmed_at) WHERE status = 'confirmed';

CREATE TABLE outbox_streams (
    stream TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    confirmed_upto INTEGER NOT NULL DEFAULT 0 CHECK (confirmed_upto >= 0),
    last_confirmed_at TEXT
);
INSERT INTO outbox_streams(stream) VALUES ('records'), ('telemetry'), ('bulk');

-- Existing data becomes records-stream rows with contiguous seqs: every producer and
-- product first (v1 never sent them; central resolves a lot's names from them), in
-- their creation order, then every v1 row still pending, in its v1 order. Times the
-- v1 schema did not keep are marked unknown: boot_id 'unknown', uptime_s null,
-- clock_synced false.
INSERT INTO outbox(stream, seq, kind, record_id, body, status, attempts, created_at)
SELECT 'records', row_number() OVER (ORDER BY grp, old_seq), kind, record_id, body,
       'pending', 0, created_at
FROM (
    SELECT 0 AS grp, seq AS old_seq, 'producer' AS kind, id AS record_id, created_at,
           json_object('id', id, 'name', name, 'phone', phone, 'village', village,
                       'recorded_at', created_at, 'boot_id', 'unknown', 'uptime_s', NULL,
                       'clock_synced', json('false')) AS body
    FROM producers
    UNION ALL
    SELECT 0, seq, 'product', id, created_at,
           json_object('id', id, 'name', name, 'unit_price_dong', unit_price_dong,
                       'recorded_at', created_at, 'boot_id', 'unknown', 'uptime_s', NULL,
                       'clock_synced', json('false'))
    FROM products
    UNION ALL
    SELECT 1, o.seq, coalesce(json_extract(o.payload, '$.type'), 'lot'), o.record_id,
           o.created_at,
           CASE
               WHEN l.id IS NULL THEN  -- no lot row: the v1 message itself, kept whole
                   json_remove(o.payload, '$.v', '$.site', '$.seq', '$.type')
               WHEN l.tare_source IS NULL THEN
                   json_object('id', l.id, 'producer_id', l.producer_id,
                               'product_id', l.product_id, 'net_g', l.net_g,
                               'recorded_at', l.recorded_at, 'boot_id', l.boot_id,
                               'uptime_s', l.uptime_s, 'clock_synced', json('false'))
               ELSE
                   json_object('id', l.id, 'producer_id', l.producer_id,
                               'product_id', l.product_id, 'net_g', l.net_g,
                               'tare_g', l.tare_g, 'tare_source', l.tare_source,
                               'recorded_at', l.recorded_at, 'boot_id', l.boot_id,
                               'uptime_s', l.uptime_s, 'clock_synced', json('false'))
           END
    FROM outbox_v1 o LEFT JOIN lots l ON l.id = o.record_id
    WHERE o.status = 'pending'
);

UPDATE outbox_streams SET last_seq = (SELECT count(*) FROM outbox WHERE stream = 'records')
WHERE stream = 'records';
