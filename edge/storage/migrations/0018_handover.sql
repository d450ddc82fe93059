-- Station schema 18 (issue 14): courier handovers (edge/handover/, edge/storage/handover.py,
-- docs/handover.md).
--
-- handovers: one pickup of one carrier's parcels by a courier. At most one open handover per
-- carrier (carrier_key: the carrier's name folded, edge/storage/search_key.py). Its id is
-- also the manifest's id (the signed QR, the ``manifest`` record for central). Closing sets
-- the closed_* columns once, with the totals and how the courier confirmed (PIN or a
-- signature, kept here); nothing else about a handover changes after that.
--
-- handover_scans: every scan, kept (never deleted): what the scanner typed, where it came
-- from, the verdict and the parcel it named. An undo marks the scan undone (once).
-- At most one live (accepted, not undone) scan per parcel and handover.
--
-- handover_missing: the parcels a lead confirmed as "not handed over" at this pickup.
--
-- parcel_handovers: a parcel handed over (its accepted scan in a closed handover): written in
-- the close's transaction, once per parcel ever. parcel_returns: a handed-over parcel the
-- courier brought back (its goods count back into stock; never offered again).

CREATE TABLE handovers (
    id TEXT PRIMARY KEY,                      -- UUIDv7, also the manifest id
    carrier TEXT NOT NULL CHECK (length(trim(carrier)) > 0),
    carrier_key TEXT NOT NULL,
    courier_id TEXT NOT NULL,
    courier_name TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_by_id TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at TEXT,
    closed_by TEXT,
    closed_by_id TEXT,
    confirmed_with TEXT CHECK (confirmed_with IS NULL OR confirmed_with IN ('pin', 'signature')),
    signature_png BLOB,
    manifest_job_id TEXT REFERENCES print_jobs(id),
    count INTEGER,
    total_g INTEGER,
    cod_dong INTEGER,
    missing INTEGER,
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK ((confirmed_with = 'signature') = (signature_png IS NOT NULL))
);
CREATE UNIQUE INDEX handovers_one_open ON handovers(carrier_key) WHERE status = 'open';
CREATE INDEX handovers_opened_at ON handovers(opened_at);

CREATE TRIGGER handovers_never_deleted BEFORE DELETE ON handovers
BEGIN
    SELECT RAISE(ABORT, 'handovers are never deleted');
END;
CREATE TRIGGER handovers_closed_once BEFORE UPDATE ON handovers
WHEN OLD.status = 'closed'
  OR NEW.id IS NOT OLD.id OR NEW.carrier IS NOT OLD.carrier
  OR NEW.courier_id IS NOT OLD.courier_id OR NEW.opened_at IS NOT OLD.opened_at
BEGIN
    SELECT RAISE(ABORT, 'a handover is only ever closed, once');
END;

CREATE TABLE handover_scans (
    id TEXT PRIMARY KEY,                      -- UUIDv7
    handover_id TEXT NOT NULL REFERENCES handovers(id),
    code TEXT NOT NULL CHECK (length(code) <= 512),
    source TEXT NOT NULL CHECK (source IN ('keyboard', 'phone', 'camera')),
    verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'duplicate', 'unknown', 'forged',
        'other_carrier', 'voided', 'handed_over', 'returned', 'cancelled')),
    tracking TEXT,
    parcel_id TEXT REFERENCES parcels(id),
    by_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at TEXT NOT NULL,
    undone_at TEXT,
    undone_by TEXT,
    CHECK (verdict <> 'accepted' OR parcel_id IS NOT NULL),
    CHECK (undone_at IS NULL OR verdict = 'accepted')
);
CREATE INDEX handover_scans_handover ON handover_scans(handover_id, at);
CREATE UNIQUE INDEX handover_scans_one_live ON handover_scans(handover_id, parcel_id)
    WHERE verdict = 'accepted' AND undone_at IS NULL;

CREATE TRIGGER handover_scans_never_deleted BEFORE DELETE ON handover_scans
BEGIN
    SELECT RAISE(ABORT, 'scans are never deleted');
END;
CREATE TRIGGER handover_scans_only_undone BEFORE UPDATE ON handover_scans
WHEN OLD.undone_at IS NOT NULL
  OR NEW.id IS NOT OLD.id OR NEW.handover_id IS NOT OLD.handover_id
  OR NEW.code IS NOT OLD.code OR NEW.verdict IS NOT OLD.verdict
  OR NEW.parcel_id IS NOT OLD.parcel_id OR NEW.at IS NOT OLD.at
BEGIN
    SELECT RAISE(ABORT, 'a scan is only ever undone, once');
END;

CREATE TABLE handover_missing (
    handover_id TEXT NOT NULL REFERENCES handovers(id),
    parcel_id TEXT NOT NULL REFERENCES parcels(id),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    by_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (handover_id, parcel_id)
);

CREATE TABLE parcel_handovers (
    parcel_id TEXT PRIMARY KEY REFERENCES parcels(id),
    handover_id TEXT NOT NULL REFERENCES handovers(id),
    at TEXT NOT NULL
);
CREATE INDEX parcel_handovers_handover ON parcel_handovers(handover_id);

CREATE TABLE parcel_returns (
    parcel_id TEXT PRIMARY KEY REFERENCES parcel_handovers(parcel_id),
    handover_id TEXT NOT NULL REFERENCES handovers(id),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    by_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE TRIGGER parcel_handovers_never_changed BEFORE UPDATE ON parcel_handovers
BEGIN
    SELECT RAISE(ABORT, 'a handed-over parcel is never changed');
END;
CREATE TRIGGER parcel_handovers_never_deleted BEFORE DELETE ON parcel_handovers
BEGIN
    SELECT RAISE(ABORT, 'a handed-over parcel is never deleted');
END;
CREATE TRIGGER parcel_returns_never_changed BEFORE UPDATE ON parcel_returns
BEGIN
    SELECT RAISE(ABORT, 'a return is never changed');
END;
CREATE TRIGGER parcel_returns_never_deleted BEFORE DELETE ON parcel_returns
BEGIN
    SELECT RAISE(ABORT, 'a return is never deleted');
END;

-- A scan looks its parcel up by tracking number, voided parcels included.
CREATE INDEX parcels_tracking ON parcels(tracking);
