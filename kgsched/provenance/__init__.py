"""Results as W3C PROV and credits, running statistics, and export to PROV-JSON and RO-Crate."""
