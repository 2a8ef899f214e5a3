"""Judging: the pure rules that turn observations plus a control into verdicts.

The web classifier (:mod:`.classify`), throttling (:mod:`.throttling`), circumvention endpoints
(:mod:`.circumvention`) and reason codes in plain words (:mod:`.explain`). No I/O beyond the
packaged reference data: the same inputs always give the same verdict, so ``probe reclassify``
can re-judge stored data. May import :mod:`probe.core`, :mod:`probe.host` and
:mod:`probe.inputs`; never :mod:`probe.measure` or :mod:`probe.store`.
"""
