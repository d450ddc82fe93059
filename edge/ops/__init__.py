"""Running the station as a service: systemd's notify protocol (:mod:`edge.ops.sdnotify`),
``edge health`` (:mod:`edge.ops.health`) and ``edge backup`` (:mod:`edge.ops.backup`)."""
