-- Station schema v14: corrections without deleting history (issue 12, edge/storage/corrections.py).
-- A lead voids a lot or corrects its farmer/product with a reason; farmers and products are
-- edited; two farmers are merged. Nothing is deleted or rewritten: a lot row stays as it was
-- recorded, each correction is a row of its own (never updated, never deleted: triggers),
-- an edit keeps what the farmer/product was before it, and a merge keeps both farmers.
-- Each of these writes its record for central (outbox, records stream) and its audit entry
-- in the same transaction.

CREATE TABLE corrections (
    id TEXT PRIMARY KEY,                      -- UUIDv7, also the id of its record for central
    lot_id TEXT NOT NULL REFERENCES lots(id),
    kind TEXT NOT NULL CHECK (kind IN ('void', 'correct')),
    producer_id TEXT REFERENCES producers(id),  -- correct: the new farmer (NULL: unchanged)
    product_id TEXT REFERENCES products(id),    -- correct: the new product (NULL: unchanged)
    was_producer_id TEXT NOT NULL REFERENCES producers(id),  -- the lot's farmer before it
    was_product_id TEXT NOT NULL REFERENCES products(id),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    actor_id TEXT NOT NULL,                   -- the signed-in person (edge.web.auth)
    actor_name TEXT NOT NULL,
    at TEXT NOT NULL,
    CHECK ((kind = 'void' AND producer_id IS NULL AND product_id IS NULL)
        OR (kind = 'correct' AND (producer_id IS NOT NULL OR product_id IS NOT NULL)))
);
CREATE INDEX corrections_lot ON corrections(lot_id);
CREATE UNIQUE INDEX corrections_one_void ON corrections(lot_id) WHERE kind = 'void';

CREATE TRIGGER corrections_none_after_void BEFORE INSERT ON corrections
WHEN EXISTS (SELECT 1 FROM corrections c WHERE c.lot_id = NEW.lot_id AND c.kind = 'void')
BEGIN
    SELECT RAISE(ABORT, 'the lot is voided');
END;
CREATE TRIGGER corrections_never_changed BEFORE UPDATE ON corrections
BEGIN
    SELECT RAISE(ABORT, 'corrections are never changed');
END;
CREATE TRIGGER corrections_never_deleted BEFORE DELETE ON corrections
BEGIN
    SELECT RAISE(ABORT, 'corrections are never deleted');
END;

-- Edits: the producers/products row holds the current values; each edit keeps the values
-- before (was_*) and after it.
CREATE TABLE producer_edits (
    id TEXT PRIMARY KEY,
    producer_id TEXT NOT NULL REFERENCES producers(id),
    name TEXT NOT NULL,
    phone TEXT,
    village TEXT,
    was_name TEXT NOT NULL,
    was_phone TEXT,
    was_village TEXT,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX producer_edits_producer ON producer_edits(producer_id);

CREATE TABLE product_edits (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products(id),
    name TEXT NOT NULL,
    unit_price_dong INTEGER,
    grading TEXT,
    was_name TEXT NOT NULL,
    was_unit_price_dong INTEGER,
    was_grading TEXT,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX product_edits_product ON product_edits(product_id);

-- Merges: the merged farmer stays (with its lots, as recorded); merged_into points at the
-- farmer its lots now count for (kept current through chains: merging B, which A was merged
-- into, into C points A at C too). A merged farmer is not offered in the picker.
CREATE TABLE producer_merges (
    id TEXT PRIMARY KEY,
    survivor_id TEXT NOT NULL REFERENCES producers(id),
    merged_id TEXT NOT NULL UNIQUE REFERENCES producers(id),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TEXT NOT NULL,
    CHECK (survivor_id <> merged_id)
);
CREATE TRIGGER producer_merges_never_changed BEFORE UPDATE ON producer_merges
BEGIN
    SELECT RAISE(ABORT, 'merges are never changed');
END;
CREATE TRIGGER producer_merges_never_deleted BEFORE DELETE ON producer_merges
BEGIN
    SELECT RAISE(ABORT, 'merges are never deleted');
END;

ALTER TABLE producers ADD COLUMN merged_into TEXT REFERENCES producers(id);

-- A lot as it stands now: its farmer and product after corrections (the latest correction
-- of each wins) and merges, and whether it is voided. recorded_* are the lot row's own.
-- Lists, totals and labels read lots through this view.
CREATE VIEW lots_current AS
SELECT x.id AS id,
       x.seq AS seq,
       x.site_id AS site_id,
       x.net_g AS net_g,
       x.recorded_at AS recorded_at,
       coalesce(p.merged_into, p.id) AS producer_id,
       x.cur_product AS product_id,
       x.producer_id AS recorded_producer_id,
       x.product_id AS recorded_product_id,
       v.id IS NOT NULL AS voided,
       v.reason AS void_reason,
       v.at AS voided_at,
       v.actor_name AS voided_by,
       x.corrected AS corrected
FROM (
    SELECT l.id, l.seq, l.site_id, l.net_g, l.recorded_at, l.producer_id, l.product_id,
           coalesce((SELECT c.producer_id FROM corrections c
                     WHERE c.lot_id = l.id AND c.producer_id IS NOT NULL
                     ORDER BY c.rowid DESC LIMIT 1), l.producer_id) AS cur_producer,
           coalesce((SELECT c.product_id FROM corrections c
                     WHERE c.lot_id = l.id AND c.product_id IS NOT NULL
                     ORDER BY c.rowid DESC LIMIT 1), l.product_id) AS cur_product,
           EXISTS (SELECT 1 FROM corrections c
                   WHERE c.lot_id = l.id AND c.kind = 'correct') AS corrected
    FROM lots l
) x
JOIN producers p ON p.id = x.cur_producer
LEFT JOIN corrections v ON v.lot_id = x.id AND v.kind = 'void';

-- Recent farmers first (0013's producers.last_lot_at): a lot corrected to another farmer,
-- and the lots of a farmer merged into another, make that farmer recent too.
CREATE TRIGGER corrections_make_farmer_recent AFTER INSERT ON corrections
WHEN NEW.producer_id IS NOT NULL
BEGIN
    UPDATE producers SET last_lot_at = (SELECT recorded_at FROM lots WHERE id = NEW.lot_id)
    WHERE id = NEW.producer_id
      AND (last_lot_at IS NULL
           OR last_lot_at < (SELECT recorded_at FROM lots WHERE id = NEW.lot_id));
END;

CREATE TRIGGER producer_merges_make_survivor_recent AFTER INSERT ON producer_merges
BEGIN
    UPDATE producers SET last_lot_at = (SELECT last_lot_at FROM producers WHERE id = NEW.merged_id)
    WHERE id = NEW.survivor_id
      AND (SELECT last_lot_at FROM producers WHERE id = NEW.merged_id) IS NOT NULL
      AND (last_lot_at IS NULL
           OR last_lot_at < (SELECT last_lot_at FROM producers WHERE id = NEW.merged_id));
END;
