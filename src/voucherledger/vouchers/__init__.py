"""Vouchers: issued to groups, spent at accredited suppliers, revoked or expired."""
