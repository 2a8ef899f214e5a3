"""The core: the vocabulary every other layer speaks, and nothing else.

The records of what was observed and judged (:mod:`.model`), the one record codec
(:mod:`.codec`), OONI failure strings and the one exception -> failure boundary
(:mod:`.failures`), the project's base exception (:mod:`.errors`), the run configuration and
its defaults (:mod:`.settings`), and the network vocabulary (:mod:`.net`: URLs, addresses,
host:port, resolvers). Pure and light: no I/O, no third-party import beyond msgspec, and no
import from any other layer of probe.
"""
