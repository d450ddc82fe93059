-- Station schema v4: photos of lots, products' grading keys, proposed and confirmed
-- grades (issue 6).
--
-- products.grading: the grade rules a product uses, a file name in grading.rules_dir
--   without .toml (e.g. 'banana'); NULL = not graded by the station.
-- photos: one row per stored photo. path and thumb_path are relative to
--   camera.photos_dir; the files are written (and fsynced) before the row commits.
--   deleted_at/deleted_reason: the full JPEG was removed on purpose (retention); the
--   thumbnail stays. grading: the grading result as JSON (graded, declined or error).
-- lot_grades: one row per lot that has a proposal or a confirmed grade.
-- grade_confirmations: every confirmation or override, the record central will get
--   (a UUIDv7 id; in rowid order); not in the outbox yet.

ALTER TABLE products ADD COLUMN grading TEXT CHECK (grading IS NULL OR length(grading) > 0);

CREATE TABLE photos (
    id TEXT PRIMARY KEY,
    lot_id TEXT NOT NULL REFERENCES lots(id),
    source TEXT NOT NULL CHECK (source IN ('camera', 'upload')),
    taken_at TEXT NOT NULL,
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    bytes INTEGER NOT NULL CHECK (bytes > 0),
    path TEXT NOT NULL UNIQUE,
    thumb_width INTEGER NOT NULL CHECK (thumb_width > 0),
    thumb_height INTEGER NOT NULL CHECK (thumb_height > 0),
    thumb_bytes INTEGER NOT NULL CHECK (thumb_bytes > 0),
    thumb_path TEXT NOT NULL UNIQUE,
    deleted_at TEXT,
    deleted_reason TEXT,
    grading TEXT CHECK (grading IS NULL OR json_valid(grading)),
    CHECK ((deleted_at IS NULL) = (deleted_reason IS NULL))
);
CREATE INDEX photos_lot ON photos(lot_id, taken_at);

CREATE TABLE lot_grades (
    lot_id TEXT PRIMARY KEY REFERENCES lots(id),
    proposed_grade TEXT,
    confidence REAL,
    method TEXT,
    photo_id TEXT REFERENCES photos(id),
    proposed_at TEXT,
    grade TEXT,
    confirmed_by TEXT,
    confirmed_at TEXT,
    CHECK ((grade IS NULL) = (confirmed_at IS NULL)),
    CHECK ((grade IS NULL) = (confirmed_by IS NULL))
);

CREATE TABLE grade_confirmations (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    lot_id TEXT NOT NULL REFERENCES lots(id),
    grade TEXT NOT NULL,
    proposed_grade TEXT,
    confidence REAL,
    method TEXT,
    photo_id TEXT REFERENCES photos(id),
    overridden INTEGER NOT NULL CHECK (overridden IN (0, 1)),
    confirmed_by TEXT NOT NULL CHECK (length(trim(confirmed_by)) > 0),
    confirmed_at TEXT NOT NULL
);
CREATE INDEX grade_confirmations_lot ON grade_confirmations(lot_id);
