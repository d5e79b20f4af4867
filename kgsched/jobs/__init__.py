"""Jobs: the pure state machine of a job, and the claim protocol over the store."""
