-- Station schema v10: the software tare in force, so a restart keeps it.
-- At most one row (the station has one scale); no row = no software tare. tare_g is
-- the gross weight staff tared (the empty crate), set_at when they did. Setting and
-- clearing it write an audit_log entry (scale.tare_set, scale.tare_cleared) in the
-- same transaction.
CREATE TABLE software_tare (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tare_g INTEGER NOT NULL CHECK (tare_g > 0),
    set_at TEXT NOT NULL
);
