"""Serial weighing scales.

Modules: :mod:`~edge.scale.protocols` (one pure parser and encoder per indicator family,
and the registry), :mod:`~edge.scale.stability` (the software stability window),
:mod:`~edge.scale.state` (the snapshot the station shows), :mod:`~edge.scale.reader`
(supervised driver: streaming and polled), :mod:`~edge.scale.profiles` (per-model TOML
profiles), :mod:`~edge.scale.simulator` (a scale on a pseudo-terminal),
:mod:`~edge.scale.probe` (finding a port's protocol), :mod:`~edge.scale.cli`
(``edge scale ...``).
"""
