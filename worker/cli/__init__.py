"""`storywatch ...`: the commands (`main`), the operator commands (`ops`) and how their
reports look (`ops_report`). Commands import the pipeline lazily, so `--help` stays fast."""
