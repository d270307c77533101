"""serialization layer."""
