"""The WSGI application (served by waitress in `crmail serve`)."""

import os

from django.core.wsgi import get_wsgi_application

from crmail.config.env import keep_files_private

keep_files_private()  # before the settings open the data dir's files: they hold mail
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmail.config.settings")
application = get_wsgi_application()
