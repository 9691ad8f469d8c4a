"""Select & export: method, cut, merge, and the exported file."""
from studio import select_page
from studio.session import show

show(select_page.render)
