"""The peers our servers are measured against: what a user would otherwise pick (see docs/benchmarks.md)."""
