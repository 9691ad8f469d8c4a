"""Outcomes: the results of `nait eval`, read from a results folder (no model needed)."""
from studio import outcomes_page

outcomes_page.render()
