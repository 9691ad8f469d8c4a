"""Select & export: method, cut, merge, and the exported file."""
from studio import select_page
from studio.session import studio

select_page.render(studio())
