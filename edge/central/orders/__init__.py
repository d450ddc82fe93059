"""Central order import (issue 13, docs/orders.md): a marketplace export (TikTok Shop
CSV or XLSX, or the project's own CSV) read into rows (``exports``), a mapping from
seller SKU to product, grade, packaging and point (``mapping``), rows grouped and
checked into orders and rejections (``plan``), and the ``edge central orders``,
``tracking`` and ``catalogue`` commands (``cli``)."""
