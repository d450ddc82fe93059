-- Station schema v3: print jobs of every label kind, and what the printer said (issue 4).
-- data: the label's data as JSON for kinds printed from their data (receipt, shipping,
--   manifest, text); NULL for a lot label, which is rendered from its lot row.
-- printer_status: the printer's condition when the job last had to wait or was cut off
--   (paper_out, cover_open, error, offline, unreachable, interrupted); NULL otherwise.
-- bytes_sent: for a job cut off mid-way, how many of its bytes had been sent.

ALTER TABLE print_jobs ADD COLUMN data TEXT CHECK (data IS NULL OR json_valid(data));
ALTER TABLE print_jobs ADD COLUMN printer_status TEXT;
ALTER TABLE print_jobs ADD COLUMN bytes_sent INTEGER CHECK (bytes_sent IS NULL OR bytes_sent >= 0);
