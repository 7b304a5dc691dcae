"""Built-in plugins. Each imports only ``core.api``, ``web.api`` and its own modules."""
