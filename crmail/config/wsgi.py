"""The WSGI application (served by waitress in `crmail serve`, or by any WSGI server).

Django's application, behind ``crmail.config.proxy``: X-Forwarded-* headers are believed
only from the proxies in ``CRMAIL_TRUSTED_PROXIES`` and removed otherwise.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from crmail.config.env import keep_files_private
from crmail.config.proxy import TrustedProxies

keep_files_private()  # before the settings open the data dir's files: they hold mail
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmail.config.settings")
application = TrustedProxies(get_wsgi_application(), settings.CRMAIL_TRUSTED_PROXIES)
