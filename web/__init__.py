"""baocao web layer: HTTP, screens, middleware. Calls ``core`` services."""
