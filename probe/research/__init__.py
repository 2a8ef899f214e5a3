"""Research: many runs and vantage points, and other people's data.

The verdict matrix and changes (:mod:`.compare`), outages from the history of runs
(:mod:`.outages`), OONI measurements read, imported and exported (:mod:`.ooni`), CSV, JSON lines
and Parquet exports (:mod:`.export`) and Datasette (:mod:`.explore`). Reads through
:mod:`probe.store`; formats nothing for people. May import core, host, inputs, store, measure,
judge and run.
"""
