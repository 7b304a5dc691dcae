"""baocao web layer: HTTP, screens, middleware. Calls ``core`` services."""

# The bounded {id:int} path convertor, registered before any module builds its routes.
from web import params as _params  # noqa: E402,F401
