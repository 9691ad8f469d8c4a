"""Transfer: the targets' selections compared."""
from studio import transfer_page
from studio.session import studio

transfer_page.render(studio())
