"""carepath workflow."""
