"""Neuron explorer: one neuron in candidates and targets."""
from studio import neurons_page
from studio.session import show

show(neurons_page.render)
