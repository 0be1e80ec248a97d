"""stylecast's benchmarks: `python -m benchmarks` from a source checkout (see docs/benchmarks.md).

One module per section (model, pipeline, transport, gpu); each returns a `Section` of rows that
`report` prints as a table, saves as JSON and draws in one PNG.
"""
