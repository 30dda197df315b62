"""The evaluation harness behind `storywatch eval`, outside the service package.

`sets` turns the labelled data of `shared/data/` into protocols, `metrics` scores them,
`harness` runs them through the tracker, `cv` cross-validates the seed numbers, `trec`
is the TREC-TS sentence protocol, and `report` prints and writes the results. The service
never imports it; only the `eval` command does, on demand.
"""
