"""Reporting above the domains: the programme report and the programme's supplier list."""
