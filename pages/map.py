"""Overlap map: candidates and targets in activation space."""
from studio import map_page
from studio.session import show

show(map_page.render)
