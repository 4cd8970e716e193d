# Serves the test CAS site on 127.0.0.1 with a threaded WSGI server (no Django dev-server autoreload) and prints
# {"port": N} as the first stdout line. Port from PORT (0, the default, picks a free one). Database from CAS_DB.
import json
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'casproj_settings')

import django  # noqa: E402

django.setup()
from django.core.wsgi import get_wsgi_application  # noqa: E402


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


httpd = make_server('127.0.0.1', int(os.environ.get('PORT', '0')), get_wsgi_application(),
                    server_class=Server, handler_class=Quiet)
print(json.dumps({'port': httpd.server_port}), flush=True)
httpd.serve_forever()
