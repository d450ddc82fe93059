-- Issue 12: the people who sign in at the station, and their sessions.
-- Nobody is deleted: a person who leaves is disabled; a session that ends keeps its row.

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
    name_key TEXT NOT NULL UNIQUE,          -- the name as typed at sign-in: casefolded, spaces collapsed
    role TEXT NOT NULL CHECK (role IN ('staff', 'lead', 'courier', 'technician')),
    pin_hash TEXT NOT NULL,                 -- argon2id
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,            -- sha256 of the cookie's token; the token is never stored
    person_id TEXT NOT NULL REFERENCES people(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX sessions_person ON sessions(person_id, ended_at);
