-- Station schema 15 (issue 12, "money and paper").
--
-- lots.day, lots.day_no: the daily lot number staff see and central receives: 1, 2, 3...
-- per station-local day (cfg.site.timezone), counting lots only. `day` is that local
-- date (YYYY-MM-DD). Both are set in record_lot's transaction; lots recorded before this
-- migration are numbered when the station starts (Store.number_lot_days: a migration
-- cannot know the station's time zone).
--
-- lots.unit_price_dong: the product's price per kg when the lot was recorded (NULL: the
-- product had none then). A receipt and the day's totals use it, so a later price
-- change does not change what a recorded lot was worth. Existing lots get their
-- product's current price.
--
-- print_jobs.copy_of: a reprint of a label that had printed is a new job, a copy of
-- this one; its label says "BẢN SAO" (the audit log holds who asked and why).

ALTER TABLE lots ADD COLUMN day TEXT;
ALTER TABLE lots ADD COLUMN day_no INTEGER CHECK (day_no IS NULL OR day_no >= 1);
ALTER TABLE lots ADD COLUMN unit_price_dong INTEGER
    CHECK (unit_price_dong IS NULL OR unit_price_dong >= 0);
CREATE UNIQUE INDEX lots_day_no ON lots(site_id, day, day_no);

UPDATE lots SET unit_price_dong = (SELECT p.unit_price_dong FROM products p WHERE p.id = lots.product_id);

ALTER TABLE print_jobs ADD COLUMN copy_of TEXT REFERENCES print_jobs(id);
