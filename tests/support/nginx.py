"""nginx in front of app nodes with the site the README deploys (``deploy/nginx-site.conf``),
for the two-node test and bench/bench_nodes.py: one file, so what is tested and measured is
what users install. nginx runs in the foreground from a folder of its own, never as a service."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx-site.conf"


def site(upstreams: list[str], port: int) -> str:
    """The deployed site with its placeholders filled: ``upstreams`` (host:port each) behind
    127.0.0.1:``port``."""
    text = SITE.read_text()
    for placeholder in ("@SERVERS@", "@LISTEN@"):
        if placeholder not in text:
            raise ValueError(f"{SITE} lost its placeholder {placeholder}")
    servers = " ".join(f"server {address};" for address in upstreams)
    return text.replace("@SERVERS@", servers).replace("@LISTEN@", f"127.0.0.1:{port}")


def start(prefix: Path, upstreams: list[str], port: int,
          http_extra: str = "") -> subprocess.Popen[bytes]:
    """nginx serving ``site`` from the folder ``prefix`` (created; its config, pid, error log and
    temporary files go there). ``http_extra``: more directives for the http block, which the
    site's location inherits (it sets no headers of its own)."""
    prefix.mkdir(parents=True)
    temp = " ".join(f"{kind}_temp_path {prefix / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers may then write the temp paths
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n  access_log off;\n  {temp}\n  {http_extra}\n{site(upstreams, port)}\n}}\n"
    )
    return subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)],
                            stderr=subprocess.STDOUT, start_new_session=True)
