"""Running the gate on a cluster: `plan` deals a tree into shards and says what each needs (a GPU, a whole node),
`shard` runs one shard's gate in a subprocess and returns its reports, `ray` sends shards to Ray as tasks
(`pip install 'model-checks[ray]'`; Ray is imported there only)."""
