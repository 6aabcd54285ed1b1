"""carepath schedules."""
