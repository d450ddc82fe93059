-- Station schema 17 (issue 13): orders central sends down, the tracking-number blocks it
-- assigns to this point, and the parcels staff pack against the orders
-- (edge/orders/, edge/storage/orders.py, docs/packing.md).
--
-- orders, order_lines: an order as central's latest version of it says (downlink record
-- "order", edge/orders/apply.py). A newer version replaces the row and its lines; an older
-- or equal one is ignored. status is central's word ('open' or 'cancelled'); whether it is
-- packed is the parcels' business. product_key is the line's product name folded
-- (edge/storage/search_key.py fold): lines, lots and products meet on it.
--
-- products.pack_tolerance_g: how far a parcel may weigh from the expected weight, per pack
-- of the product (NULL: the default rule, docs/packing.md).
--
-- tracking_blocks: numbers central assigned to this point for a carrier: prefix +
-- zero-padded n for n in first..last. next_n is the next to issue; it moves on in the
-- transaction that commits the parcel the number goes on, so a number is issued once.
--
-- parcels: one per packing (never deleted, never changed but for its void mark, which is
-- set once). At most one live (not voided) parcel per order; a number from a block is on
-- one parcel ever (voided or not), a marketplace number on one live parcel.
-- parcel_lines: what the parcel holds, as the order said when it was packed.
-- parcel_lots: the lots the goods came from (traceability back to the farmers).

CREATE TABLE orders (
    id TEXT PRIMARY KEY,                      -- the marketplace's order id
    version INTEGER NOT NULL CHECK (version >= 1),
    status TEXT NOT NULL CHECK (status IN ('open', 'cancelled')),
    channel TEXT NOT NULL,
    carrier TEXT NOT NULL CHECK (length(trim(carrier)) > 0),
    tracking TEXT,                            -- the marketplace's number, if it gave one
    recipient TEXT NOT NULL,
    phone TEXT NOT NULL,
    province TEXT NOT NULL,
    district TEXT NOT NULL,
    commune TEXT NOT NULL,
    address TEXT NOT NULL,
    payment TEXT NOT NULL CHECK (payment IN ('cod', 'prepaid')),
    cod_dong INTEGER NOT NULL CHECK (cod_dong >= 0),
    amount_dong INTEGER NOT NULL CHECK (amount_dong >= 0),
    buyer_message TEXT,
    seller_note TEXT,
    package_id TEXT,
    created_at TEXT NOT NULL,                 -- when the buyer ordered (central's word)
    received_at TEXT NOT NULL,                -- when this point first had it
    updated_at TEXT NOT NULL                  -- when this version was applied
);
CREATE INDEX orders_status ON orders(status, created_at, id);
CREATE INDEX orders_package ON orders(package_id) WHERE package_id IS NOT NULL;
CREATE INDEX orders_tracking ON orders(tracking) WHERE tracking IS NOT NULL;

CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders(id),
    line_no INTEGER NOT NULL CHECK (line_no >= 1),
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    variation TEXT,
    product TEXT NOT NULL CHECK (length(trim(product)) > 0),
    product_key TEXT NOT NULL,
    grade TEXT,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    pack_net_g INTEGER NOT NULL CHECK (pack_net_g > 0),
    pack_tare_g INTEGER NOT NULL CHECK (pack_tare_g >= 0),
    PRIMARY KEY (order_id, line_no)
);

ALTER TABLE products ADD COLUMN pack_tolerance_g INTEGER
    CHECK (pack_tolerance_g IS NULL OR pack_tolerance_g >= 0);

CREATE TABLE tracking_blocks (
    id TEXT PRIMARY KEY,
    carrier TEXT NOT NULL CHECK (length(trim(carrier)) > 0),
    prefix TEXT NOT NULL,
    first INTEGER NOT NULL CHECK (first >= 0),
    last INTEGER NOT NULL,
    digits INTEGER NOT NULL CHECK (digits BETWEEN 1 AND 20),
    next_n INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    CHECK (last >= first),
    CHECK (next_n BETWEEN first AND last + 1)
);
CREATE INDEX tracking_blocks_carrier ON tracking_blocks(carrier, received_at);

CREATE TABLE parcels (
    id TEXT PRIMARY KEY,                      -- UUIDv7, also the id of its record for central
    order_id TEXT NOT NULL REFERENCES orders(id),
    tracking TEXT NOT NULL CHECK (length(tracking) > 0),
    tracking_block_id TEXT REFERENCES tracking_blocks(id),  -- NULL: the order's own number
    carrier TEXT NOT NULL,
    net_g INTEGER NOT NULL CHECK (net_g > 0),
    gross_g INTEGER NOT NULL CHECK (gross_g > 0),
    expected_g INTEGER NOT NULL CHECK (expected_g > 0),
    tolerance_g INTEGER NOT NULL CHECK (tolerance_g >= 0),
    override_reason TEXT CHECK (override_reason IS NULL OR length(trim(override_reason)) > 0),
    scale_frame TEXT NOT NULL,
    print_job_id TEXT NOT NULL REFERENCES print_jobs(id),
    packed_by TEXT NOT NULL,
    packed_by_id TEXT NOT NULL,
    packed_at TEXT NOT NULL,
    voided_at TEXT,
    void_reason TEXT,
    voided_by TEXT,
    voided_by_id TEXT,
    CHECK ((voided_at IS NULL) = (void_reason IS NULL)),
    CHECK ((voided_at IS NULL) = (voided_by IS NULL))
);
CREATE UNIQUE INDEX parcels_one_live_per_order ON parcels(order_id) WHERE voided_at IS NULL;
CREATE UNIQUE INDEX parcels_block_number_once ON parcels(tracking)
    WHERE tracking_block_id IS NOT NULL;
CREATE UNIQUE INDEX parcels_live_tracking ON parcels(tracking) WHERE voided_at IS NULL;
CREATE INDEX parcels_packed_at ON parcels(packed_at);

CREATE TRIGGER parcels_never_deleted BEFORE DELETE ON parcels
BEGIN
    SELECT RAISE(ABORT, 'parcels are never deleted');
END;
CREATE TRIGGER parcels_only_voided BEFORE UPDATE ON parcels
WHEN OLD.voided_at IS NOT NULL
  OR NEW.id IS NOT OLD.id OR NEW.order_id IS NOT OLD.order_id
  OR NEW.tracking IS NOT OLD.tracking OR NEW.tracking_block_id IS NOT OLD.tracking_block_id
  OR NEW.net_g IS NOT OLD.net_g OR NEW.gross_g IS NOT OLD.gross_g
  OR NEW.expected_g IS NOT OLD.expected_g OR NEW.tolerance_g IS NOT OLD.tolerance_g
  OR NEW.override_reason IS NOT OLD.override_reason OR NEW.print_job_id IS NOT OLD.print_job_id
  OR NEW.packed_by IS NOT OLD.packed_by OR NEW.packed_at IS NOT OLD.packed_at
BEGIN
    SELECT RAISE(ABORT, 'a parcel is only ever voided, once');
END;

CREATE TABLE parcel_lines (
    parcel_id TEXT NOT NULL REFERENCES parcels(id),
    line_no INTEGER NOT NULL CHECK (line_no >= 1),
    sku TEXT NOT NULL,
    product TEXT NOT NULL,
    product_key TEXT NOT NULL,
    grade TEXT,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    net_g INTEGER NOT NULL CHECK (net_g > 0),
    PRIMARY KEY (parcel_id, line_no)
);
CREATE INDEX parcel_lines_product ON parcel_lines(product_key, grade);

CREATE TABLE parcel_lots (
    parcel_id TEXT NOT NULL REFERENCES parcels(id),
    lot_id TEXT NOT NULL REFERENCES lots(id),
    net_g INTEGER NOT NULL CHECK (net_g > 0),
    PRIMARY KEY (parcel_id, lot_id)
);
CREATE INDEX parcel_lots_lot ON parcel_lots(lot_id);
