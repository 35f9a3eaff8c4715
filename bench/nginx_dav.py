"""A throw-away nginx serving a WebDAV directory on 127.0.0.1: a real remote cache for the
remote-cache tests and benchmark (Debian's nginx-light has the DAV module)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx_dav(nginx: str, base: Path) -> Iterator[tuple[str, Path]]:
    """(URL of the cache, the directory holding what was PUT there) while nginx runs."""
    store = base / "store"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"  {k}_temp_path {base}/{k};"
                     for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = base / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log;
events {{}}
http {{
  access_log off;
{temp}
  server {{
    listen 127.0.0.1:{port};
    root {store};
    client_max_body_size 0;
    location / {{
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
  }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(base)],
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/cache", store / "cache"
    finally:
        proc.terminate()
        proc.wait(10)
