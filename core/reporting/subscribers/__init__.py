"""Built-in consumers of the report workflow."""
