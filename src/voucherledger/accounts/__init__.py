"""Accounts (the parties of a scheme) and their API keys."""
