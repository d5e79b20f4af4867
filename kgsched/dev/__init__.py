"""The harness, not the product: a local federation of processes for the demo, notebooks, benches and tests."""
