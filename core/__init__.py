"""baocao core: the domain layer. Never imports Starlette or ``web``."""

__version__ = "0.1.0"

# Bumped on every breaking change of the hook specifications or of ``core.api``;
# a plugin states the CORE_API it was written for and is refused on a mismatch.
CORE_API = 1
