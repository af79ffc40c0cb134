"""The two guides' configs through ``portico import`` and a real portico, end to end.

The IIS guide's web.config rule (tests/golden/import/iis-guide.web.config) in front
of its Flask app under waitress: ``X-Original-Host`` (HTTP_X_ORIGINAL_HOST) reaches
the app. The Apache guide's ``<Location /myapp>`` block in front of its app under
gunicorn. The apps are the examples' (examples/*-guide), run by portico as
``[[app]]`` tables added to the imported text, so portico waits for them to be
ready; the only other change to the imported config is the ports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.support.portico_proc import StartPortico
from tests.support.supervised import REPO

GOLDEN = REPO / "tests" / "golden" / "import"


def imported(dialect: str, source: Path, tmp_path: Path) -> str:
    """``portico import DIALECT SOURCE -o ...`` as a user runs it; the file it wrote."""
    output = tmp_path / "imported.toml"
    result = subprocess.run([sys.executable, "-m", "portico", "import", dialect, str(source),
                             "-o", str(output)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return output.read_text()


def test_iis_guide_rule_reaches_the_waitress_app(start_portico: StartPortico,
                                                 tmp_path: Path) -> None:
    port = free_port()
    web_config = tmp_path / "web.config"  # the guide's rule, on a free port
    web_config.write_text((GOLDEN / "iis-guide.web.config").read_text().replace(
        "localhost:50100", f"127.0.0.1:{port}"))
    text = imported("iis", web_config, tmp_path)
    proxy = start_portico(f"""[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "hosted"
wsgi = "server:hostedApp"
server = "waitress"
cwd = "{REPO / "examples" / "iis-guide"}"
bind = "127.0.0.1:{port}"

{text}""")
    with httpx.Client(timeout=10) as client:
        hello = client.get(f"{proxy.url}/myApp/")
        info = client.get(f"{proxy.url}/myApp/whoami", headers={"Host": "my.site.com"}).json()
        outside = client.get(f"{proxy.url}/elsewhere")
    assert hello.text == "Hello World!!!"
    assert info["original_host"] == "my.site.com"  # HTTP_X_ORIGINAL_HOST = {HTTP_HOST}
    assert info["script_root"] == "/myApp"  # {R:0}: the whole path went upstream
    assert outside.status_code == 404  # no rule, no route: portico's own 404


def test_apache_guide_location_reaches_the_gunicorn_app(start_portico: StartPortico,
                                                        tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "site.conf"
    conf.write_text((GOLDEN / "apache-guide.conf").read_text().replace(
        "127.0.0.1:8000", f"127.0.0.1:{port}"))
    text = imported("apache", conf, tmp_path)
    proxy = start_portico(f"""[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "myapp"
wsgi = "app:app"
server = "gunicorn"
cwd = "{REPO / "examples" / "apache-guide"}"
bind = "127.0.0.1:{port}"
workers = 1

{text}""")
    with httpx.Client(timeout=10) as client:
        hello = client.get(f"{proxy.url}/myapp/")
        info = client.get(f"{proxy.url}/myapp/whoami", headers={"Host": "my.site.com"}).json()
    assert hello.text == "Hello from behind the proxy!\n"
    assert info["script_root"] == "/myapp"  # RequestHeader set X-Forwarded-Prefix /myapp
    assert info["scheme"] == "http"  # RequestHeader set X-Forwarded-Proto http
    assert info["external_url"] == "http://my.site.com/myapp/"
