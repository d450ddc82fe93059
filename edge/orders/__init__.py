"""Orders at the collection point (issue 13): what central sends down (orders, products,
tracking-number blocks; :mod:`edge.orders.apply`), stock and the pick list, the
check-weigh rule, tracking numbers, and the packing service the station builds as
``station.orders`` (docs/packing.md)."""
