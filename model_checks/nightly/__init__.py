"""The nightly report: per artifact, size, latency percentiles, throughput, accuracy drop and the change
against baseline, with plots over the runs stored by pytest-benchmark. `history` reads stored runs,
`document` builds the report as values, `render` writes markdown and HTML, `plots` draws (matplotlib, loaded
only when a report is written), `plugin` gathers figures from a pytest run."""
