"""The two guides' configs through ``portico import`` and a real portico, end to end.

The IIS guide's web.config rule (tests/golden/import/iis-guide.web.config) in front
of its Flask app under waitress: ``X-Original-Host`` (HTTP_X_ORIGINAL_HOST) reaches
the app. The Apache guide's ``<Location /myapp>`` block in front of its app under
gunicorn. Both imports (``portico import ... -o``, in process) go into one portico,
started once for the module; the apps are the examples' (examples/*-guide), run as
``[[app]]`` tables added to the imported text so portico waits for them to be
ready. The other changes: the ports, and the IIS rule is given ``host = "iis.test"``,
since IIS matches ``myApp(.*)`` case-insensitively anywhere in the path and would
take the Apache guide's ``/myapp`` too (as it would in IIS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from portico.cli import main
from tests.conftest import free_port
from tests.support.portico_proc import Portico
from tests.support.supervised import REPO

GOLDEN = REPO / "tests" / "golden" / "import"


def imported(dialect: str, source: Path) -> str:
    """``portico import DIALECT SOURCE -o FILE`` as a user runs it; the file it wrote."""
    output = source.with_suffix(".toml")
    result = CliRunner().invoke(main, ["import", dialect, str(source), "-o", str(output)])
    assert result.exit_code == 0, result.output
    return output.read_text()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portico]:
    tmp = tmp_path_factory.mktemp("import-guides")
    iis_port, apache_port = free_port(), free_port()
    web_config = tmp / "web.config"  # the guide's rule, on a free port
    web_config.write_text((GOLDEN / "iis-guide.web.config").read_text().replace(
        "localhost:50100", f"127.0.0.1:{iis_port}"))
    site = tmp / "site.conf"
    site.write_text((GOLDEN / "apache-guide.conf").read_text().replace(
        "127.0.0.1:8000", f"127.0.0.1:{apache_port}"))
    iis_rules = imported("iis", web_config).replace(
        'dialect = "iis"', 'dialect = "iis"\nhost = "iis.test"')
    config = f"""[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "hosted"
wsgi = "server:hostedApp"
server = "waitress"
cwd = "{REPO / "examples" / "iis-guide"}"
bind = "127.0.0.1:{iis_port}"

[[app]]
name = "myapp"
wsgi = "app:app"
server = "gunicorn"
cwd = "{REPO / "examples" / "apache-guide"}"
bind = "127.0.0.1:{apache_port}"
workers = 1

{iis_rules}
{imported("apache", site)}"""
    running = Portico(config, tmp)
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), running.log_text()


def test_iis_guide_rule_reaches_the_waitress_app(proxy: Portico) -> None:
    with httpx.Client(timeout=10) as client:
        hello = client.get(f"{proxy.url}/myApp/", headers={"Host": "iis.test"})
        info = client.get(f"{proxy.url}/myApp/whoami", headers={"Host": "iis.test"}).json()
        outside = client.get(f"{proxy.url}/elsewhere", headers={"Host": "iis.test"})
    assert hello.text == "Hello World!!!"
    assert info["original_host"] == "iis.test"  # HTTP_X_ORIGINAL_HOST = {HTTP_HOST}
    assert info["script_root"] == "/myApp"  # {R:0}: the whole path went upstream
    assert outside.status_code == 404  # no rule, no route: portico's own 404


def test_apache_guide_location_reaches_the_gunicorn_app(proxy: Portico) -> None:
    with httpx.Client(timeout=10) as client:
        hello = client.get(f"{proxy.url}/myapp/")
        info = client.get(f"{proxy.url}/myapp/whoami", headers={"Host": "my.site.com"}).json()
    assert hello.text == "Hello from behind the proxy!\n"
    assert info["script_root"] == "/myapp"  # RequestHeader set X-Forwarded-Prefix /myapp
    assert info["scheme"] == "http"  # RequestHeader set X-Forwarded-Proto http
    assert info["external_url"] == "http://my.site.com/myapp/"
