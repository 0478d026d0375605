import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
django_application = get_wsgi_application()

from mdm.fastpath import DeviceFastPath  # noqa: E402 (needs the apps loaded)

application = DeviceFastPath(django_application)

from mdm import heap  # noqa: E402

heap.freeze()  # after the URL tree and every view are loaded (mdm/heap.py)
