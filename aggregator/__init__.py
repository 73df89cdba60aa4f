"""aggregator: feeds in, one deduplicated daily reference list out."""

__version__ = "0.1.0"
