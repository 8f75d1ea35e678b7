"""Infrastructure shared by every domain: settings, database, errors, auth, ids, money."""
