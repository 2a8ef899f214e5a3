"""Presenting: every text and page made for people to read.

Tables fitted to a width, CSV and JSON lines (:mod:`.tables`), the end-of-run summary
(:mod:`.summary`) and what a run shows as it goes (:mod:`.progress`), the evidence of one
measurement (:mod:`.evidence`), circumvention results (:mod:`.circumvention`), the vantage-point
matrix (:mod:`.compare`), changes over time (:mod:`.diff`), OONI imports (:mod:`.ooni`), re-judged
verdicts (:mod:`.reclassify`), merges (:mod:`.merge`), traces (:mod:`.trace`), geo data
(:mod:`.geo`), test lists (:mod:`.testlists`), the config file (:mod:`.config`), the lab
(:mod:`.lab`) and the offline HTML report (:mod:`.html`); :mod:`.text` holds what they share
(text cut to a width). Commands in probe/cli only print what these return. Only the standard
library, so read-only commands stay fast. May import every layer below it (core to research);
nothing below imports it.
"""
