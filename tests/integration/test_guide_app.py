"""The Apache guide's deployment end to end: real gunicorn (gevent workers), real Flask, ProxyFix."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.portico_proc import Portico

Guide = tuple[Portico, int]  # the portico, and the port of the app behind it


@pytest.fixture(scope="module")
def guide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guide]:
    app_port = free_port()
    config = f"""
[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "myapp"
wsgi = "portico.demo.app:app"
server = "gunicorn"
workers = 1
bind = "127.0.0.1:{app_port}"

[[route]]
path = "/myapp"
app = "myapp"
request_headers.set = {{ "X-Forwarded-Prefix" = "{{prefix}}" }}
"""
    proxy = Portico(config, tmp_path_factory.mktemp("guide"))
    yield proxy, app_port
    assert proxy.stop() == 0
    assert "Traceback" not in proxy.log_text()


def seen(proxy: Portico, **kwargs: Any) -> dict[str, str]:
    response = httpx.get(f"{proxy.url}/myapp/whoami.json", **kwargs)
    assert response.status_code == 200
    return json.loads(response.text)  # type: ignore[no-any-return]


def test_the_app_sees_client_scheme_host_and_prefix(guide: Guide) -> None:
    proxy, _ = guide
    info = seen(proxy, headers={"Host": "my.site.com:8080"})
    assert info["remote_addr"] == "127.0.0.1"
    assert info["scheme"] == "http"
    assert info["host"] == "my.site.com:8080"  # port kept, unlike the usual nginx recipe
    assert info["script_root"] == "/myapp"
    assert info["path"] == "/whoami.json"
    assert info["url_for_hello"] == "/myapp/"
    assert info["url_for_external"] == "http://my.site.com:8080/myapp/"


def test_spoofed_forwarded_for_never_reaches_remote_addr(guide: Guide) -> None:
    proxy, _ = guide
    info = seen(proxy, headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Prefix": "//evil.example",
                                "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    assert info["remote_addr"] == "127.0.0.1"
    assert info["scheme"] == "http"
    assert info["script_root"] == "/myapp"
    assert "evil" not in info["url_for_external"]


def test_absolute_upstream_redirect_is_rewritten(guide: Guide) -> None:
    proxy, app_port = guide
    response = httpx.get(f"{proxy.url}/myapp/legacy-redirect", headers={"Host": "my.site.com"})
    assert response.status_code == 302
    # The app built http://127.0.0.1:<app_port>/whoami; Apache's <Location> recipe makes /myappwhoami.
    assert response.headers["location"] == "http://my.site.com/myapp/whoami"
    assert str(app_port) not in response.headers["location"]


def test_prefix_aware_redirect_is_not_doubled(guide: Guide) -> None:
    proxy, _ = guide
    response = httpx.get(f"{proxy.url}/myapp/go")
    assert response.headers["location"] == "/myapp/"


def test_cookie_paths_move_under_the_prefix(guide: Guide) -> None:
    proxy, _ = guide
    response = httpx.get(f"{proxy.url}/myapp/cookie")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2  # several Set-Cookie stay several
    assert any(c.startswith("theme=dark") and "Path=/myapp" in c and "Path=/myapp/" not in c for c in cookies)
    assert any(c.startswith("cart=3") and "Path=/myapp/shop" in c for c in cookies)


def test_whoami_page_and_url_for_links(guide: Guide) -> None:
    proxy, _ = guide
    page = httpx.get(f"{proxy.url}/myapp/whoami").text
    assert '<td id="script_root">/myapp</td>' in page
    assert 'href="/myapp/"' in page


def test_generator_response_is_streamed_not_buffered(guide: Guide) -> None:
    proxy, _ = guide
    arrivals = []
    started = time.monotonic()
    with httpx.stream("GET", f"{proxy.url}/myapp/stream") as response:
        for line in response.iter_lines():
            arrivals.append((line, time.monotonic() - started))
    assert [line for line, _ in arrivals] == ["piece 0", "piece 1", "piece 2"]
    assert arrivals[0][1] < 0.25 < arrivals[1][1]  # the first piece came before the app slept


def test_access_log_has_request_id_route_and_upstream(guide: Guide) -> None:
    proxy, app_port = guide
    response = httpx.get(f"{proxy.url}/myapp/", headers={"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    assert proxy.wait_for_log(f"rid=trace-42 route=/myapp upstream=127.0.0.1:{app_port}")


def test_app_log_file_is_written(guide: Guide) -> None:
    proxy, _ = guide
    (log,) = (proxy.state_dir / "logs").glob("portico-*/myapp.log")  # one directory per config
    assert log.exists() and "gevent" in log.read_text().lower()
