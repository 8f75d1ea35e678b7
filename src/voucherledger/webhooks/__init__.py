"""Webhooks: endpoints an account registers, and the signed delivery of its events."""
