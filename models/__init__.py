"""carepath models."""
