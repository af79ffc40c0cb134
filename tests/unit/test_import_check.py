"""``portico import ... --check samples.txt [--against URL]``: the pass/fail table, from
the same in-process evaluation as ``portico try``, and the old server asked live."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portico.cli import main
from portico.importers.samples import SampleError, parse_samples

WEB_CONFIG = """<rewrite><rules>
  <rule name="old" stopProcessing="true">
    <match url="^old/(\\d+)$" />
    <action type="Redirect" url="https://example.com/new/{R:1}" appendQueryString="false" />
  </rule>
  <rule name="private" stopProcessing="true">
    <match url="^private" />
    <action type="CustomResponse" statusCode="403" statusReason="Forbidden" />
  </rule>
  <rule name="bots" stopProcessing="true">
    <match url="^bots" />
    <action type="AbortRequest" />
  </rule>
  <rule name="app" stopProcessing="true">
    <match url="^myApp(.*)" />
    <action type="Rewrite" url="http://127.0.0.1:9/myApp{R:1}" />
  </rule>
</rules></rewrite>
"""


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table at 200 columns, whatever width the console took when first imported
    (COLUMNS is read then; another test in the same process may have come first)."""
    from portico.cli import console

    monkeypatch.setattr(console.out, "_width", 200)


def run(tmp_path: Path, samples: str, *extra: str) -> Result:
    (tmp_path / "web.config").write_text(WEB_CONFIG)
    (tmp_path / "samples.txt").write_text(samples)
    return CliRunner().invoke(main, ["import", "iis", str(tmp_path / "web.config"), "--check",
                                     str(tmp_path / "samples.txt"), *extra],
                              env={"COLUMNS": "200"})


def test_every_kind_of_sample_passes(tmp_path: Path) -> None:
    result = run(tmp_path, "# the samples\n"
                 "GET /old/1 -> 301 https://example.com/new/1\n"
                 "GET /myApp/x?q=1 -> /myApp/x?q=1   # the path sent upstream\n"
                 "GET /myApp/y -> http://127.0.0.1:9/myApp/y\n"
                 "GET http://a.example/private -> 403\n"
                 "GET /bots -> abort\n"
                 "GET /nothing -> 404\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("pass │") == 6
    assert "6 of 6 samples pass" in result.output


def test_a_wrong_expectation_is_a_failed_row(tmp_path: Path) -> None:
    result = run(tmp_path, "GET /old/1 -> 302 https://example.com/new/1\n"
                 "GET /myApp/x -> /elsewhere\nGET /old/2 -> 301 https://example.com/new/2\n")
    assert result.exit_code == 1
    rows = [line for line in result.output.splitlines() if "GET /" in line]
    assert ["FAIL" in row for row in rows] == [True, True, False]
    assert "301 https://example.com/new/1" in rows[0]  # what portico does instead
    assert "1 of 3 samples pass" in result.output


def test_a_malformed_sample_names_its_line() -> None:
    with pytest.raises(SampleError, match=r"samples\.txt:2: expected 'METHOD PATH -> EXPECTED'"):
        parse_samples("GET /a -> 404\nGET /b\n", "samples.txt")


class OldServer(BaseHTTPRequestHandler):
    """The server being replaced: /old/N redirects, /private is 403, the rest 200."""

    def do_GET(self) -> None:
        if self.path.startswith("/old/"):
            self.send_response(301)
            self.send_header("Location", "https://example.com/new/" + self.path[5:])
        elif self.path == "/private":
            self.send_response(403)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/else")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def old_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OldServer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_against_the_old_server_compares_status_and_location(tmp_path: Path,
                                                             old_server: str) -> None:
    result = run(tmp_path, "GET /old/7 -> 301 https://example.com/new/7\n"
                 "GET /private -> 403\nGET /myApp/x -> /myApp/x\nGET /moved -> 404\n",
                 "--against", old_server)
    assert result.exit_code == 1, result.output
    live = result.output.split("against the old server", 1)[1]
    rows = [line for line in live.splitlines() if "GET /" in line]
    assert ["DIFFERS" in row for row in rows] == [False, False, False, True]
    assert "302 /else" in rows[3]  # the old server redirects where portico says 404


def test_against_needs_check(tmp_path: Path) -> None:
    (tmp_path / "web.config").write_text(WEB_CONFIG)
    result = CliRunner().invoke(main, ["import", "iis", str(tmp_path / "web.config"),
                                       "--against", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--against needs --check" in result.output


def test_untranslated_lines_fail_the_import_and_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "httpd.conf").write_text("ProxyPass /a http://127.0.0.1:1/\nAlias /s /var/s\n")
    output = tmp_path / "portico.toml"
    result = CliRunner().invoke(main, ["import", "apache", str(tmp_path / "httpd.conf"),
                                       "-o", str(output)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert f"not translated {tmp_path / 'httpd.conf'}:2: Alias: static files" in result.output
    assert not output.exists()
    partial = CliRunner().invoke(main, ["import", "apache", "--allow-partial",
                                        str(tmp_path / "httpd.conf"), "-o", str(output)])
    assert partial.exit_code == 0, partial.output
    assert "# NOT TRANSLATED" in output.read_text() and "#     Alias /s /var/s" in output.read_text()


def test_a_broken_file_is_exit_status_2_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "web.config").write_text("<configuration>\n<rewrite>\n</configuration>\n")
    result = CliRunner().invoke(main, ["import", "iis", str(tmp_path / "web.config")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"error {tmp_path / 'web.config'}:3: XML: malformed XML" in result.output
