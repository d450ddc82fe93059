-- Station schema v1. Weights are integer grams, money integer đồng.
-- Every record has a UUIDv7 id and a per-site sequence number that only grows.

CREATE TABLE site_sequence (
    site_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL CHECK (last_seq >= 0)
);

CREATE TABLE producers (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    site_id TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    phone TEXT,
    village TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    site_id TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    unit_price_dong INTEGER CHECK (unit_price_dong IS NULL OR unit_price_dong >= 0),
    created_at TEXT NOT NULL
);

CREATE TABLE lots (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    site_id TEXT NOT NULL,
    producer_id TEXT NOT NULL REFERENCES producers(id),
    product_id TEXT NOT NULL REFERENCES products(id),
    net_g INTEGER NOT NULL CHECK (net_g > 0),
    scale_frame TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    uptime_s REAL NOT NULL
);
CREATE INDEX lots_recorded_at ON lots(recorded_at);

CREATE TABLE print_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'printed', 'held', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    printed_at TEXT
);
CREATE INDEX print_jobs_status ON print_jobs(status, created_at);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    topic TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_pending ON outbox(status, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    record_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
