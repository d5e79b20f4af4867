"""kgsched: a provenance knowledge graph and scheduler for federated scientific analysis."""

__version__ = "0.1.0"
