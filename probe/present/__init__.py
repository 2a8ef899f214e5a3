"""Presenting: every text and page made for people to read.

Tables fitted to a width, CSV and JSON lines (:mod:`.tables`), the end-of-run summary
(:mod:`.summary`) and progress line (:mod:`.progress`), the evidence of one measurement
(:mod:`.evidence`), circumvention results (:mod:`.circumvention`), the vantage-point matrix of
`probe compare` (:mod:`.compare`) and the offline HTML report (:mod:`.html`); :mod:`.text` holds
what they share (text cut to a width). Only the standard library, so read-only commands stay
fast. May import every layer below it (core to research); nothing below imports it.
"""
