"""Programmes: budgets with rules, their funding, parties and accredited suppliers."""
