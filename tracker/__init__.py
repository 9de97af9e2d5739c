"""tracker: follows AI-engineering sources and turns them into a digest a person can read."""

__version__ = "0.1.0"
