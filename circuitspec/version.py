"""The version of circuitspec: part of every verdict's cache key and of every report."""

__version__ = "0.2.0"
