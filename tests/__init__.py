"""The test suite; its helpers are imported as ``tests.<module>``."""
