-- Station schema v2: the tare subtracted from a lot's weight (issue 3).
-- tare_source: 'scale' (the indicator reported a net weight) or 'software' (the
-- station subtracted a tare it took itself); both NULL for a gross weighing.

ALTER TABLE lots ADD COLUMN tare_g INTEGER CHECK (tare_g IS NULL OR tare_g >= 0);
ALTER TABLE lots ADD COLUMN tare_source TEXT CHECK (tare_source IS NULL OR tare_source IN ('scale', 'software'));
