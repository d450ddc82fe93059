-- Issue 12, farmer search: every producer's folded search key, "name|village|phone"
-- (edge/storage/search_key.py: no diacritics, đ as d, lower case, phone digits in the
-- national form). The key is computed by edge_search_key(), the Python normaliser that
-- edge.storage.db.connect registers on every station connection; the triggers keep it
-- up to date wherever a producer is added or edited.

ALTER TABLE producers ADD COLUMN search_key TEXT;

UPDATE producers SET search_key = edge_search_key(name, village, phone);

CREATE INDEX producers_search_key ON producers(search_key);

CREATE TRIGGER producers_search_key_insert AFTER INSERT ON producers
BEGIN
    UPDATE producers SET search_key = edge_search_key(NEW.name, NEW.village, NEW.phone)
    WHERE id = NEW.id;
END;

CREATE TRIGGER producers_search_key_update AFTER UPDATE OF name, village, phone ON producers
BEGIN
    UPDATE producers SET search_key = edge_search_key(NEW.name, NEW.village, NEW.phone)
    WHERE id = NEW.id;
END;

-- "Recent farmers first": each producer's latest lot at this station, kept with the
-- producer so a search sorts on it without visiting lots (a lot recorded, or a lot whose
-- farmer is changed, updates it).
ALTER TABLE producers ADD COLUMN last_lot_at TEXT;

CREATE INDEX IF NOT EXISTS lots_producer_recorded ON lots(producer_id, recorded_at);

UPDATE producers SET last_lot_at = (
    SELECT MAX(l.recorded_at) FROM lots l WHERE l.producer_id = producers.id
);

CREATE INDEX producers_last_lot ON producers(last_lot_at);

CREATE TRIGGER producers_last_lot_insert AFTER INSERT ON lots
BEGIN
    UPDATE producers SET last_lot_at = NEW.recorded_at
    WHERE id = NEW.producer_id AND (last_lot_at IS NULL OR last_lot_at < NEW.recorded_at);
END;

CREATE TRIGGER producers_last_lot_update AFTER UPDATE OF producer_id, recorded_at ON lots
BEGIN
    UPDATE producers SET last_lot_at = (
        SELECT MAX(l.recorded_at) FROM lots l WHERE l.producer_id = producers.id
    )
    WHERE id IN (OLD.producer_id, NEW.producer_id);
END;
