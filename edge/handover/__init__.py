"""Courier handover (issue 14, docs/handover.md): a courier takes a carrier's packed
parcels, scanning each; the station reconciles live and prints the signed manifest."""
