-- Central acknowledged a seq this station never assigned: its database was replaced
-- (a new SD card) or another station uses the same site id. Central then already holds
-- other records under these seqs and would drop this station's as duplicates, so nothing
-- is confirmed; the conflict is kept here and reported until the site id is changed.
ALTER TABLE outbox_streams ADD COLUMN ack_conflict_upto INTEGER;
ALTER TABLE outbox_streams ADD COLUMN ack_conflict_at TEXT;
