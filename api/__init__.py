"""carepath api."""
