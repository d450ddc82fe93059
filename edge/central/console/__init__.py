"""Central's operations console (``edge central serve``, issue 15): a FastAPI app over
the central PostgreSQL store, server-rendered with Jinja2, in Vietnamese and English,
for signed-in operators. One module per area: :mod:`fleet` (fleet and point pages),
:mod:`alerts_view` (alerts), :mod:`search` (trace a lot or parcel), :mod:`business`
(kg and orders), :mod:`catalogue` (products, prices, SKU mapping, pushed down),
:mod:`exports` (CSV and XLSX), :mod:`metrics_view` (Prometheus ``/metrics``); the shell
is :mod:`app`, :mod:`auth`, :mod:`db`, :mod:`pages`, :mod:`schema`. See docs/console.md.
"""
