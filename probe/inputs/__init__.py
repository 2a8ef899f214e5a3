"""Inputs: what a run measures and the reference data it is judged with.

Citizen Lab test lists (:mod:`.testlists`), circumvention endpoint lists
(:mod:`.endpointlists`), block-page fingerprints (:mod:`.fingerprints`) and offline IP -> AS and
country data (:mod:`.geo`). Reads files; never measures, judges or writes results. May import
:mod:`probe.core`, :mod:`probe.host` and :mod:`probe.store` (the URL set that de-duplicates
streamed lists lives with the rest of the SQL).
"""
