"""The WSGI application (served by waitress in `crmail serve`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmail.config.settings")
application = get_wsgi_application()
