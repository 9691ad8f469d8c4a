"""Overlap map: candidates and targets in activation space."""

from studio import map_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(map_page.render)
