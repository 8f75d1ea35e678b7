"""Paying suppliers what their captured claims earned."""
