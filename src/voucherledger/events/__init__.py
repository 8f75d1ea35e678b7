"""The event feed: ``GET /v1/events``, an account's events in the order they committed."""
