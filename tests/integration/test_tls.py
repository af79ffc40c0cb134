"""HTTPS at the proxy: real TLS clients (httpx, openssl s_client) against a real portico."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import free_port
from tests.support.portico_proc import Portico, StartPortico
from tests.support.recorder import Recorder
from tests.support.tls import (
    cert_block,
    handshake,
    make,
    s_client,
    serial_of,
    swap_in,
    tls_config,
)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture
def local_ca(tmp_path: Path) -> Path:
    return tmp_path / "ca"


# -- the app behind https ----------------------------------------------------------------

def test_app_sees_https_and_plain_http_is_redirected(start_portico: StartPortico, local_ca: Path) -> None:
    cert, key = make(local_ca, "localhost", "127.0.0.1", "my.site.com")
    app_port = free_port()
    proxy = start_portico(f"""
[server]
listen = ["http://127.0.0.1:0", "https://127.0.0.1:0"]
redirect_to_https = true
hsts = "max-age=31536000"

{cert_block(cert, key, ["my.site.com", "localhost", "127.0.0.1"])}

[[app]]
name = "myapp"
wsgi = "portico.demo.app:app"
workers = 1
bind = "127.0.0.1:{app_port}"

[[route]]
path = "/myapp"
app = "myapp"
""")
    ca = local_ca / "ca.pem"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as client:
        secure = client.get(f"{proxy.https_url}/myapp/whoami.json",
                            headers={"Host": f"my.site.com:{proxy.https_port}"})
        info = secure.json()
        assert info["scheme"] == "https"
        assert info["url_for_external"] == f"https://my.site.com:{proxy.https_port}/myapp/"
        assert secure.headers["strict-transport-security"] == "max-age=31536000"

        plain = client.get(f"{proxy.url}/myapp/x?y=1", headers={"Host": f"my.site.com:{proxy.port}"})
        assert plain.status_code == 308
        assert plain.headers["location"] == f"https://my.site.com:{proxy.https_port}/myapp/x?y=1"
        assert "strict-transport-security" not in plain.headers
        rid = plain.headers["x-request-id"]  # portico's own 308, logged under the id it sent
        assert proxy.wait_for_log('"GET /myapp/x?y=1 HTTP/1.1" 308 0 '), proxy.log_text()
        assert proxy.wait_for_log(f"rid={rid} "), proxy.log_text()
        no_port = client.get(f"{proxy.url}/myapp/?a=%20b", headers={"Host": "my.site.com"})
        assert no_port.headers["location"] == f"https://my.site.com:{proxy.https_port}/myapp/?a=%20b"
        followed = client.get(f"{proxy.url}/myapp/whoami.json", follow_redirects=True)
        assert followed.json()["scheme"] == "https"


def test_forwarded_proto_is_https_over_tls(start_portico: StartPortico, recorder: Recorder, local_ca: Path) -> None:
    cert, key = make(local_ca, "localhost", "127.0.0.1")
    proxy = start_portico(tls_config(local_ca, recorder.url, server="forwarded = true",
                                     certs=cert_block(cert, key, ["localhost", "127.0.0.1"])))
    response = httpx.get(f"{proxy.https_url}/myapp/", verify=ssl.create_default_context(
        cafile=str(local_ca / "ca.pem")))
    assert response.status_code == 200
    head = recorder.requests[-1].head
    assert b"\r\nX-Forwarded-Proto: https\r\n" in head
    assert b";proto=https;" in head
    assert b"\r\nX-Forwarded-Port: " + str(proxy.https_port).encode() + b"\r\n" in head


# -- protocol versions, SNI, ALPN -------------------------------------------------------

@pytest.fixture
def sni_proxy(start_portico: StartPortico, recorder: Recorder, local_ca: Path) -> Portico:
    default = make(local_ca, "a.test")
    other = make(local_ca, "b.test")
    wild = make(local_ca, "*.wild.test")
    certs = (cert_block(*default, ["a.test"]) + cert_block(*other, ["b.test"])
             + cert_block(*wild, ["*.wild.test"]))
    return start_portico(tls_config(local_ca, recorder.url, certs=certs))


@needs_openssl
def test_only_tls_12_and_13_are_offered(sni_proxy: Portico) -> None:
    port = sni_proxy.https_port
    weak = "DEFAULT@SECLEVEL=0"  # so the client really offers TLS 1.0/1.1
    for old in ("-tls1", "-tls1_1"):
        out = s_client(port, old, "-cipher", weak, "-servername", "a.test")
        assert "Cipher is (NONE)" in out or "no protocols available" in out or "alert" in out, out
        assert "BEGIN CERTIFICATE" not in out
    tls12 = s_client(port, "-tls1_2", "-servername", "a.test")
    assert "Protocol  : TLSv1.2" in tls12
    assert "Cipher    : ECDHE-ECDSA-AES128-GCM-SHA256" in tls12
    no_forward_secrecy = s_client(port, "-tls1_2", "-cipher", "AES128-SHA:AES256-GCM-SHA384",
                                  "-servername", "a.test")
    assert "Cipher is (NONE)" in no_forward_secrecy  # not in the intermediate profile
    tls13 = s_client(port, "-tls1_3", "-servername", "a.test")
    assert "TLSv1.3" in tls13


@needs_openssl
def test_sni_picks_the_certificate_and_alpn_prefers_h2(sni_proxy: Portico) -> None:
    port = sni_proxy.https_port
    assert "subject=CN = b.test" in s_client(port, "-servername", "b.test")
    assert "subject=CN = *.wild.test" in s_client(port, "-servername", "x.wild.test")
    assert "subject=CN = a.test" in s_client(port, "-servername", "deep.x.wild.test")  # one label only
    assert "subject=CN = a.test" in s_client(port, "-noservername")  # the default
    # HTTP/2 first (docs/guide/http2.md), HTTP/1.1 for a client that offers only it.
    assert "ALPN protocol: h2" in s_client(port, "-servername", "b.test", "-alpn", "h2,http/1.1")
    assert "ALPN protocol: http/1.1" in s_client(port, "-servername", "b.test", "-alpn", "http/1.1")


# -- certificates changing on disk ---------------------------------------------------------


def test_certificate_swap_under_load_with_sighup(start_portico: StartPortico, recorder: Recorder, local_ca: Path) -> None:
    cert, key = make(local_ca, "localhost")
    proxy = start_portico(tls_config(local_ca, recorder.url, certs=cert_block(cert, key, ["localhost"])))
    ca = local_ca / "ca.pem"
    old_serial = serial_of(cert)
    # The reload checks the file in a child interpreter (pydantic, cryptography) competing
    # with this load for the CPU: it is awaited, not given a fixed time.
    reloaded = threading.Event()
    results: list[list[tuple[int, int] | str]] = [[], [], []]
    first = [threading.Event() for _ in results]

    def load(mine: list[tuple[int, int] | str], done_one: threading.Event) -> None:
        while True:  # until a handshake begun after the reload was said: it must be new
            after = reloaded.is_set()
            try:
                mine.append(handshake(proxy.https_port, ca))
            except (OSError, ValueError) as exc:
                mine.append(repr(exc))
            done_one.set()
            if after:
                return

    workers = [threading.Thread(target=load, args=pair) for pair in zip(results, first, strict=True)]
    for worker in workers:
        worker.start()
    assert all(event.wait(20) for event in first)  # each has seen the old certificate
    new_serial = swap_in(local_ca, cert, key, ["localhost"])
    os.kill(proxy.pid, signal.SIGHUP)
    try:
        assert proxy.wait_for_log(f"reloaded {proxy.config_path}", 60), proxy.log_text()
    finally:
        reloaded.set()  # the load stops either way
    for worker in workers:
        worker.join(20)
        assert not worker.is_alive()
    for mine in results:
        failures = [r for r in mine if isinstance(r, str) or r[1] != 200]
        assert not failures, failures[:5]
        serials = [r[0] for r in mine if not isinstance(r, str)]
        swapped_at = serials.index(new_serial)  # then never the old one again
        assert swapped_at > 0 and set(serials[:swapped_at]) == {old_serial}
        assert set(serials[swapped_at:]) == {new_serial}
    assert handshake(proxy.https_port, ca)[0] == new_serial
    assert handshake(proxy.https_port, ca, server_name=None)[0] == new_serial  # no SNI: default


def test_changed_files_are_picked_up_without_a_signal_and_a_broken_one_is_refused(
    start_portico: StartPortico, recorder: Recorder, local_ca: Path
) -> None:
    cert, key = make(local_ca, "localhost")
    proxy = start_portico(tls_config(local_ca, recorder.url, certs=cert_block(cert, key, ["localhost"])
                                     + "\n[tls]\nreload_interval = 0.3\n"))
    ca = local_ca / "ca.pem"
    new_serial = swap_in(local_ca, cert, key, ["localhost"])
    deadline = time.monotonic() + 5
    while handshake(proxy.https_port, ca)[0] != new_serial:
        assert time.monotonic() < deadline, "the changed certificate was not picked up"
        time.sleep(0.1)
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
    assert proxy.wait_for_log("keeping the old certificate", 5)
    assert handshake(proxy.https_port, ca) == (new_serial, 200)


# -- bad files are config errors ----------------------------------------------------------------

def run_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "portico", "run", "-c", str(path)], capture_output=True, text=True,
        timeout=30, env={**os.environ, "PORTICO_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "300"},
    )


def test_bad_certificate_files_stop_start_with_the_file_named(tmp_path: Path, local_ca: Path) -> None:
    cert, key = make(local_ca, "localhost")
    _, other_key = make(local_ca / "other", "elsewhere")
    upstream = f"http://127.0.0.1:{free_port()}/"

    mismatch = run_check(tmp_path, tls_config(tmp_path, upstream, certs=cert_block(cert, other_key, ["localhost"])))
    assert mismatch.returncode == 2
    assert f"tls.certificate[0].key: {other_key}: this key does not belong to {cert}" in mismatch.stderr

    missing = run_check(tmp_path, tls_config(tmp_path, upstream, certs=cert_block(tmp_path / "nope.pem", key, ["x"])))
    assert missing.returncode == 2 and "tls.certificate[0].cert" in missing.stderr
    assert "nope.pem: cannot read the certificate" in missing.stderr

    ca = trustme.CA()
    old = ca.issue_cert("localhost", not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    old.cert_chain_pems[0].write_to_path(str(tmp_path / "old.pem"))
    old.private_key_pem.write_to_path(str(tmp_path / "old.key"))
    expired = run_check(tmp_path, tls_config(tmp_path, upstream, certs=cert_block(
        tmp_path / "old.pem", tmp_path / "old.key", ["localhost"])))
    assert expired.returncode == 2 and "old.pem: expired on 2020-01-01" in expired.stderr
    for result in (mismatch, missing, expired):
        assert "Traceback" not in result.stderr


def test_https_listener_without_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    result = run_check(tmp_path, tls_config(tmp_path, "http://127.0.0.1:9/"))
    assert result.returncode == 2 and "needs a [[tls.certificate]]" in result.stderr


# -- certificates made by portico -----------------------------------------------------------

def test_self_signed_certificate_from_the_local_ca(start_portico: StartPortico, recorder: Recorder, tmp_path: Path) -> None:
    proxy = start_portico(tls_config(tmp_path, recorder.url, certs=(
        '[[tls.certificate]]\nhosts = ["localhost", "127.0.0.1"]\nself_signed = true\n')))
    ca = tmp_path / "state" / "tls" / "ca.pem"
    assert ca.exists()
    response = httpx.get(f"{proxy.https_url}/myapp/", verify=ssl.create_default_context(cafile=str(ca)))
    assert response.status_code == 200


def test_cert_create_and_show(tmp_path: Path) -> None:
    env = {**os.environ, "PORTICO_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "300"}

    def portico(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "portico", *args], capture_output=True,
                              text=True, timeout=30, env=env)

    made = portico("cert", "create", "--host", "my.site.com", "--host", "*.my.site.com")
    assert made.returncode == 0, made.stderr
    assert "certificate made:" in made.stdout and "update-ca-certificates" in made.stdout
    assert (tmp_path / "state" / "tls" / "ca.pem").exists()
    again = portico("cert", "create", "--host", "my.site.com", "--host", "*.my.site.com")
    assert "kept (still valid)" in again.stdout
    shown = portico("cert", "show")
    assert shown.returncode == 0 and "my.site.com, *.my.site.com" in shown.stdout
    assert "396" in shown.stdout or "397" in shown.stdout  # days left


def test_a_certificate_close_to_expiry_is_warned_about(start_portico: StartPortico, recorder: Recorder, tmp_path: Path) -> None:
    ca = trustme.CA()
    soon = ca.issue_cert("localhost", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=5))
    soon.cert_chain_pems[0].write_to_path(str(tmp_path / "soon.pem"))
    soon.private_key_pem.write_to_path(str(tmp_path / "soon.key"))
    proxy = start_portico(tls_config(tmp_path, recorder.url, certs=cert_block(
        tmp_path / "soon.pem", tmp_path / "soon.key", ["localhost"])))
    assert "soon.pem expires in 4." in proxy.log_text() or "soon.pem expires in 5.0" in proxy.log_text()
    status = subprocess.run(
        [sys.executable, "-m", "portico", "status", "--json", "-c", str(proxy.config_path)],
        capture_output=True, text=True, timeout=20,
        env={**os.environ, "PORTICO_STATE_DIR": str(tmp_path / "state")},
    )
    certs = json.loads(status.stdout)["certificates"]
    assert certs[0]["expiring"] is True and certs[0]["names"] == ["localhost"]


# -- TLS to the upstream ---------------------------------------------------------------------

def test_https_upstream_verified_with_a_custom_ca_and_sni(
    start_portico: StartPortico, recorder: Recorder, local_ca: Path
) -> None:
    # The TLS upstream is a second portico whose *default* certificate is for another name:
    # only a client that sends SNI "localhost" gets the certificate that verifies.
    other = make(local_ca, "other.test")
    right = make(local_ca, "localhost")
    backend = start_portico(tls_config(local_ca, recorder.url, certs=cert_block(*other, ["other.test"])
                                       + cert_block(*right, ["localhost"])))
    upstream = f"https://localhost:{backend.https_port}/"
    ca = local_ca / "ca.pem"
    front = start_portico(f"""
[server]
listen = ["http://127.0.0.1:0"]

[[route]]
path = "/good"
upstream = "{upstream}"
ca = "{ca}"

[[route]]
path = "/untrusted"
upstream = "{upstream}"

[[route]]
path = "/unchecked"
upstream = "{upstream}"
verify = false
""")
    good = httpx.get(f"{front.url}/good/myapp/hi")
    assert good.status_code == 200
    assert recorder.requests[-1].head.startswith(b"GET /hi HTTP/1.1\r\n")
    untrusted = httpx.get(f"{front.url}/untrusted/myapp/", headers={"Accept": "application/json"})
    assert untrusted.status_code == 502 and "certificate is not trusted" in untrusted.json()["detail"]
    assert httpx.get(f"{front.url}/unchecked/myapp/").status_code == 200
    assert "verify = false, the certificate of localhost" in front.log_text()
