"""Sources: turn one kind of input into typed events; bad records become ParseError data."""

from healthsec.ingest.base import IterableSource, ReadReport, Source, without_raw_text

__all__ = ["IterableSource", "ReadReport", "Source", "without_raw_text"]
