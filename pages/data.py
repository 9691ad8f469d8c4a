"""Data & model: what is loaded, capture status, feature library."""

from studio import data_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(data_page.render)
