"""Decide: does an article make an alert?

`match` (which story, if any), `novelty` (what it adds to what the story knows), `repeats`
(a later report of a development already alerted), `surge` (report counts per day, quiet
spells), and `tracker`, which holds every story's state and answers with one `Decision`.
Pure: no I/O, no clock, no database; the pipeline persists what the tracker learns.
"""
