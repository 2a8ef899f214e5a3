"""Running: a measurement campaign from lists to stored verdicts.

A run is three named parts on one :class:`asyncio.TaskGroup` (docs/design.md draws them): the
**producer** (:mod:`.producer`) reads the lists lazily and skips what a resumed run stored; the
**measurer pool** (:mod:`.pool`) measures under bounded concurrency, classifies and retries; the
**writer** (:mod:`.writer`) is the only part that touches the Store. :mod:`.campaign` wires
them, :mod:`.preflight` checks the network first, :mod:`.watch` keeps the network identity and
:mod:`.scrub` removes the probe's addresses. Also here: the circumvention suite
(:mod:`.circumvention`) and ``probe reclassify`` (:mod:`.reclassify`). May import every layer
below it: core, host, inputs, store, measure and judge.
"""
