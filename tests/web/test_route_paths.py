"""Templates' links with parameters come from an index of the app's routes (web.templating.RoutePaths),
not from Starlette's route-by-route search: the two must always agree."""

from __future__ import annotations

import re

import pytest
from starlette.routing import NoMatchFound

from web.templating import RoutePaths, path_for

SAMPLES = (4711, "0b6a2f4e-34c1-4a57-9d5e-1f2a3b4c5d6e", "tinh-ha-tinh", "a/b.xlsx")


def _sample(convertor):
    """The first sample the parameter's pattern takes (an id, a uuid, a word, a path)."""
    return next(value for value in SAMPLES if re.fullmatch(convertor.regex, str(value)))


def test_every_indexed_route_gives_starlettes_path(app):
    index = RoutePaths(app)
    with_params = [(name, params) for (name, params) in index.formats if params]
    assert len(with_params) > 50  # the core's and the plugins' routes with parameters are all there
    assert any(":" in name for name, _ in with_params)  # a plugin's, inside its named mount
    for name, params in index.formats:
        _, convertors = index.formats[(name, params)]
        values = {key: _sample(convertors[key]) for key in params}
        assert path_for(app, name, **values) == str(app.url_path_for(name, **values)), name


def test_a_parameter_is_converted_as_starlette_does(app):
    assert path_for(app, "report_entry", id=12) == "/reports/12"
    with pytest.raises(AssertionError):  # a negative id is no path, as with Starlette
        path_for(app, "report_entry", id=-1)


def test_names_the_index_does_not_hold_are_left_to_starlette(app):
    assert path_for(app, "static", path="app.css") == str(app.url_path_for("static", path="app.css"))
    with pytest.raises(NoMatchFound):
        path_for(app, "no_such_route", id=1)
    with pytest.raises(NoMatchFound):  # a known name with the wrong parameters
        path_for(app, "report_entry", report=1)
