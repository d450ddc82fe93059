-- Station schema v6: bytes the MQTT link used per calendar month (UTC), for the
-- monthly byte budget (issue 5, edge/sync/usage.py). Bytes are what crossed the
-- connection both ways, TLS and TCP/IP headers included (an estimate for the latter).
CREATE TABLE link_usage (
    month TEXT PRIMARY KEY CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    bytes_out INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
    bytes_in INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
    updated_at TEXT
);
