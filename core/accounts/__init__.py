"""Accounts and access: logging in, sessions, passwords, second factor, API tokens, roles, grants and the permission check."""
