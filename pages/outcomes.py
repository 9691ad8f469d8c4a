"""Outcomes: the results of `nait eval`, read from a results folder (no model needed)."""

from studio import outcomes_page
from studio.entry import through_app

if through_app():
    outcomes_page.render()
