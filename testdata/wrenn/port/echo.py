# An HTTP server for tests: it answers every GET with a JSON object of the
# request's path and headers, so a test can see exactly what reached the
# capsule. Usage: python3 echo.py PORT READYFILE
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo)
with open(sys.argv[2], "w") as ready:
    ready.write("ready\n")
server.serve_forever()
