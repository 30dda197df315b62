"""Feeds: bytes of RSS, Atom or RDF in, `ParsedFeed` out (`worker.feeds.parse`). Pure."""
