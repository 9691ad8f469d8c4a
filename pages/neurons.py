"""Neuron explorer: one neuron in candidates and targets."""

from studio import neurons_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(neurons_page.render)
