"""Lot labels: rendered to a 1-bit raster with a bundled font (label), turned into
ESC/POS bytes (escpos_out) and delivered to a printer or a folder (transport)."""
