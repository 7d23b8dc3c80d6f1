"""qkatlas: joint query/key embeddings of every attention head, reduced and served to the browser."""

__version__ = "0.1.0"
