"""Select & export: method, cut, merge, and the exported file."""

from studio import select_page
from studio.entry import through_app
from studio.session import show

if through_app():
    show(select_page.render)
