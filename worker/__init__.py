"""storywatch: watches news feeds and alerts when a tracked story has a new development."""

__version__ = "0.1.0"
