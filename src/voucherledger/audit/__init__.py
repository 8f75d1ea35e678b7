"""Audit: journal queries, exports in open standards, offline verification, reports."""
