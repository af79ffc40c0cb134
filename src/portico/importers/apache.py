"""Apache httpd.conf: mod_proxy, mod_rewrite, mod_headers, mod_alias redirects, mod_ssl.

Each directive is translated, noted as needing nothing in portico, or refused with
its file and line (``model.Problem``). Apache's order-dependent meanings that a
portico route table would change are refused rather than reordered: a ProxyPass
shadowed by an earlier shorter one, a server-level ProxyPass under a ``<Location>``
one, a Redirect that a ProxyPass takes first, ``ProxyPass !`` exclusions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from portico.importers.apache_rewrite import (
    RewriteState,
    redirect_rule,
    rewrite_map,
)
from portico.importers.apache_syntax import Directive, read_directives
from portico.importers.model import Certificate, Imported, Route

_NOT_NEEDED = {
    "loadmodule": "portico has its proxy, rewrite, header and TLS support built in",
    "serveradmin": "no portico equivalent needed", "serverroot": "used to find Include files",
    "errorlog": "portico logs errors to its console and service logs",
    "loglevel": "portico's own logging", "pidfile": "portico's state directory",
    "user": "run portico as the user you want (a service account)",
    "group": "run portico as the user you want (a service account)",
    "servertokens": "portico sends no Server version detail",
    "serversignature": "portico's error pages carry no signature",
    "proxyrequests": "portico is a reverse proxy only (ProxyRequests Off)",
    "sslprotocol": "portico's TLS settings are modern by default (TLS 1.2+)",
    "sslciphersuite": "portico's TLS settings are modern by default",
    "sslhonorcipherorder": "portico's TLS settings are modern by default",
    "documentroot": "",  # refused below: static files
}
_PASSES = {"ifmodule": "<IfModule> read as if the module were loaded"}


@dataclass(frozen=True)
class _HeaderOp:
    request: bool
    op: str
    name: str
    value: str
    directive: Directive


@dataclass
class _Scope:
    """The server, one ``<VirtualHost>`` or one ``<Location>`` in it."""

    hosts: list[str | None]
    path: str | None = None
    preserve_host: bool = False
    header_ops: list[_HeaderOp] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    rewrite: RewriteState | None = None
    port: str | None = None
    outer: list[_HeaderOp] | None = None
    """Header rules inherited from the enclosing scope (refused there, if unused)."""


def read_apache(path: Path) -> Imported:
    """Read an httpd.conf (and what it includes) into the importer's model."""
    directives = read_directives(path)
    result = Imported(source=str(path), dialect="apache")
    _Translator(result).server(directives)
    return result


class _Translator:
    def __init__(self, result: Imported) -> None:
        self.result = result
        self.all_routes: list[tuple[Route, bool]] = []  # (route, from a <Location>)
        self.redirect_paths: list[tuple[Directive, str]] = []
        self.routes_made = 0
        self.server_ops: list[_HeaderOp] = []

    def refuse(self, directive: Directive, reason: str) -> None:
        self.result.refuse(directive.origin, reason, directive.text)

    def note(self, directive: Directive, reason: str) -> None:
        self.result.note(directive.origin, reason)

    # -- scopes ----------------------------------------------------------------------
    def server(self, directives: list[Directive]) -> None:
        ports = {arg.rpartition(":")[2] for d in directives if d.key == "virtualhost"
                 for arg in d.args}
        self.vhost_ports = ports if len(ports) > 1 else set()
        server = _Scope(hosts=[None])
        self.scope(server, directives)
        for directive, path in self.redirect_paths:
            for route, _ in self.all_routes:
                if _under(path, route.path):
                    self.refuse(directive, f"the ProxyPass of {route.path} "
                                f"({route.origin.line}) takes these requests first in "
                                "Apache, so this Redirect never runs there")
        self.check_shadowing()

    def scope(self, scope: _Scope, directives: list[Directive]) -> None:
        engine = [d for d in directives if d.key == "rewriteengine"]
        scope.rewrite = RewriteState(
            self.result, scope.hosts,
            on=bool(engine) and engine[-1].args[:1] != [] and engine[-1].args[0].lower() == "on",
            port=scope.port)
        self.header_ops(scope, directives)
        if scope.outer is None:
            self.server_ops = scope.header_ops  # inherited by every <VirtualHost>
        made = self.routes_made
        for directive in directives:
            self.directive(scope, directive)
        scope.rewrite.finish()
        for route in scope.routes:
            self.finish_route(scope, route)
        self.unused_header_ops(scope, made)

    def virtual_host(self, section: Directive) -> None:
        names = [d.args[0].lower() for d in section.children if d.key == "servername" and d.args]
        aliases = [a.lower() for d in section.children if d.key == "serveralias" for a in d.args]
        hosts: list[str | None] = [n.split(":")[0] for n in names[-1:]]
        hosts += aliases
        if not hosts:
            self.note(section, "no ServerName: its routes serve every Host")
            hosts = [None]
        elif any("*" in h[2:] or "?" in h for h in aliases if h):
            self.refuse(section, "ServerAlias wildcards other than a leading '*.' are not "
                        "translated")
            return
        port = section.args[0].rpartition(":")[2] if section.args else ""
        scope = _Scope(hosts=hosts, port=port if port in self.vhost_ports else None,
                       header_ops=list(self.server_ops), outer=self.server_ops)
        self.scope(scope, section.children)
        ssl = [d for d in section.children if d.key.startswith("sslcertificate")
               or d.key == "sslengine"]
        if ssl:
            self.certificate(section, scope, ssl)

    def location(self, outer: _Scope, section: Directive) -> None:
        if len(section.args) != 1 or not section.args[0].startswith("/"):
            self.refuse(section, "<Location> needs one URL path; for a regular expression "
                        "(<Location ~>) use ProxyPassMatch or RewriteRule")
            return
        scope = _Scope(hosts=outer.hosts, path=section.args[0],
                       preserve_host=outer.preserve_host,
                       header_ops=list(outer.header_ops), rewrite=outer.rewrite,
                       outer=outer.header_ops)
        self.header_ops(scope, section.children)
        made = self.routes_made
        for directive in section.children:
            if directive.key == "proxypass":
                self.proxy_pass(scope, directive, [scope.path or "/", *directive.args],
                                in_location=True)
            elif directive.key == "proxypassreverse":
                self.proxy_pass_reverse(scope, directive, [scope.path or "/", *directive.args])
            elif directive.key in ("requestheader", "header"):
                pass  # read before the routes
            elif directive.key in ("proxypreservehost",
                                   "proxypassreversecookiepath",
                                   "proxypassreversecookiedomain"):
                self.directive(scope, directive)
            elif directive.key == "require" and [a.lower() for a in directive.args] == [
                    "all", "granted"]:
                self.note(directive, "portico serves every client (Require all granted)")
            else:
                self.refuse(directive, f"{directive.name} inside <Location> is not translated")
        if not scope.routes:
            self.refuse(section, "a <Location> without ProxyPass has nothing portico serves")
        for route in scope.routes:
            self.finish_route(scope, route)
        self.unused_header_ops(scope, made)

    def header_ops(self, scope: _Scope, directives: list[Directive]) -> None:
        """A scope's header rules apply to all its routes, wherever they are written."""
        for directive in directives:
            if directive.key in ("requestheader", "header") and not directive.section:
                op = self.header_op(directive)
                if op is not None:
                    scope.header_ops.append(op)

    def unused_header_ops(self, scope: _Scope, routes_before: int) -> None:
        if self.routes_made == routes_before:
            inherited = set() if scope.outer is None else {id(op) for op in scope.outer}
            for op in scope.header_ops:
                if id(op) not in inherited:
                    self.refuse(op.directive, "applies to no ProxyPass route here (portico "
                                "changes headers per route)")

    # -- one directive -----------------------------------------------------------------
    def directive(self, scope: _Scope, directive: Directive) -> None:
        key, args = directive.key, directive.args
        assert scope.rewrite is not None
        if directive.section:
            if key == "virtualhost" and scope.hosts == [None] and scope.path is None:
                self.virtual_host(directive)
            elif key == "location":
                self.location(scope, directive)
            elif key in _PASSES:
                self.note(directive, _PASSES[key])
                for child in directive.children:
                    self.directive(scope, child)
            else:
                self.refuse(directive, f"<{directive.name}> sections are not translated "
                            "(portico serves no files; use <Location> with ProxyPass)")
        elif key in ("servername", "serveralias"):
            if scope.hosts == [None]:
                self.note(directive, "outside <VirtualHost>: portico routes every Host")
        elif key == "listen":
            self.listen(directive)
        elif key == "proxypass":
            self.proxy_pass(scope, directive, args, in_location=False)
        elif key == "proxypassmatch":
            scope.rewrite.proxy_pass_match(directive)
        elif key == "proxypassreverse":
            self.proxy_pass_reverse(scope, directive, args)
        elif key in ("proxypassreversecookiepath", "proxypassreversecookiedomain"):
            self.cookie_reverse(scope, directive)
        elif key == "proxypreservehost":
            if [a.lower() for a in args] not in (["on"], ["off"]):
                self.refuse(directive, "ProxyPreserveHost takes On or Off")
            scope.preserve_host = [a.lower() for a in args] == ["on"]
        elif key == "proxyaddheaders":
            if args and args[0].lower() == "off":
                self.refuse(directive, "portico always sends X-Forwarded-For/-Proto/-Host")
            else:
                self.note(directive, "portico sends X-Forwarded-* itself")
        elif key in ("requestheader", "header"):
            pass  # read before the routes (header_ops)
        elif key in ("rewriteengine", "rewritecond", "rewriterule", "rewriteoptions",
                     "rewritebase"):
            scope.rewrite.directive(directive)
        elif key == "rewritemap":
            rewrite_map(self.result, directive)
        elif key in ("redirect", "redirectmatch", "redirectpermanent", "redirecttemp"):
            rule, path = redirect_rule(self.result, directive)
            if rule is not None:
                scope.rewrite.add(rule)
                if path is not None:
                    self.redirect_paths.append((directive, path))
        elif key in ("alias", "aliasmatch", "scriptalias", "documentroot"):
            self.refuse(directive, "static files are not served by this portico version; "
                        "serve them from an app or keep them on the old server")
        elif key.startswith("ssl"):
            if key not in ("sslengine", "sslcertificatefile", "sslcertificatekeyfile"):
                if key in _NOT_NEEDED:
                    self.note(directive, _NOT_NEEDED[key])
                else:
                    self.refuse(directive, f"{directive.name} is not translated; portico's "
                                "certificates are [[tls.certificate]] cert and key files")
            elif scope.hosts == [None]:
                self.refuse(directive, "SSL directives outside a <VirtualHost> with a "
                            "ServerName are not translated")
        elif key in _NOT_NEEDED:
            self.note(directive, _NOT_NEEDED[key])
        else:
            self.refuse(directive, f"{directive.name} is not translated")

    def listen(self, directive: Directive) -> None:
        if not directive.args:
            self.refuse(directive, "Listen needs a port")
            return
        address = directive.args[0]
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        https = port == "443" or directive.args[1:2] == ["https"]
        if not port.isdigit():
            self.refuse(directive, f"{address}: not a port")
            return
        self.result.listen.append(f"{'https' if https else 'http'}://{host}:{port}")

    def proxy_pass(self, scope: _Scope, directive: Directive, args: list[str],
                   in_location: bool) -> None:
        if len(args) < 2:
            self.refuse(directive, "ProxyPass needs a path and a URL")
            return
        path, url, params = args[0], args[1], args[2:]
        if url == "!":
            self.refuse(directive, "ProxyPass ... ! (an exclusion) is not translated: portico "
                        "has nothing local to serve the excluded path")
            return
        if params:
            self.refuse(directive, f"ProxyPass parameters ({params[0]}) are not translated; "
                        "see [[route]] limits")
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.refuse(directive, f"{url}: portico proxies to http:// and https:// URLs only")
            return
        if path.endswith("/") != url.endswith("/") and path != "/":
            self.note(directive, "the path and URL disagree on a trailing slash; Apache would "
                      "send '//x' or 'ax' upstream, portico joins them with one '/'")
        route = Route(path=path if path == "/" else path.rstrip("/") or "/",
                      origin=directive.origin, upstream=url)
        scope.routes.append(route)
        self.all_routes.append((route, in_location))

    def proxy_pass_reverse(self, scope: _Scope, directive: Directive, args: list[str]) -> None:
        if len(args) != 2:
            self.refuse(directive, "ProxyPassReverse needs a path and a URL")
            return
        path = args[0].rstrip("/") or "/"
        for route in scope.routes:
            if route.path == path and (route.upstream or "").rstrip("/") == args[1].rstrip("/"):
                self.note(directive, "portico maps its upstream's Location, Content-Location "
                          "and URI headers back for every route")
                return
        self.refuse(directive, f"no ProxyPass of {path} to {args[1]} before it: portico maps "
                    "back only a route's own upstream")

    def cookie_reverse(self, scope: _Scope, directive: Directive) -> None:
        if len(directive.args) != 2:
            self.refuse(directive, f"{directive.name} needs an internal and a public value")
            return
        internal, public = directive.args
        for route in scope.routes:
            upstream = urlsplit(route.upstream or "")
            if directive.key.endswith("path") and (
                    (upstream.path or "/").rstrip("/") == internal.rstrip("/")
                    and route.path.rstrip("/") == public.rstrip("/")):
                self.note(directive, f"portico moves cookie paths under {route.path} itself")
                return
            if directive.key.endswith("domain") and upstream.hostname == internal.lower():
                self.note(directive, "portico drops the upstream's cookie Domain, so the "
                          "cookie belongs to the public host")
                return
        self.refuse(directive, "portico rewrites cookies only from a route's own upstream "
                    "to its public path and host")

    # -- routes and headers ----------------------------------------------------------
    def finish_route(self, scope: _Scope, route: Route) -> None:
        route.preserve_host = scope.preserve_host
        for op in scope.header_ops:
            self.apply(op, route, scope.path)
        self.routes_made += 1
        first, *others = scope.hosts
        route.host = first
        self.result.routes.append(route)
        for host in others:
            copy = Route(**{**route.__dict__, "host": host})
            self.result.routes.append(copy)

    def header_op(self, directive: Directive) -> _HeaderOp | None:
        """``RequestHeader``/``Header`` set, add or unset with a plain value, or refused."""
        args = list(directive.args)
        request = directive.key == "requestheader"
        if not request and args[:1] and args[0].lower() in ("always", "onsuccess"):
            args = args[1:]
        if len(args) < 2 or args[0].lower() not in ("set", "add", "unset"):
            self.refuse(directive, "only 'set', 'add' and 'unset' of a header with a plain "
                        "value are translated")
            return None
        op, name, rest = args[0].lower(), args[1], args[2:]
        if op == "unset" and rest:
            self.refuse(directive, "a condition (env=, expr=) is not translated")
            return None
        if op != "unset" and (len(rest) != 1 or re.search(r"%[{a-zA-Z]|[{}]", rest[0])):
            self.refuse(directive, "only plain values are translated (no %{...} formats, "
                        "env= or expr= conditions)")
            return None
        return _HeaderOp(request, op, name, rest[0].replace("%%", "%") if rest else "",
                         directive)

    @staticmethod
    def apply(op: _HeaderOp, route: Route, prefix: str | None) -> None:
        value = op.value
        if prefix and op.request and op.name.lower() == "x-forwarded-prefix" and (
                value == prefix):
            value = "{prefix}"
        if op.op == "unset":
            (route.request_remove if op.request else route.response_remove).append(op.name)
        elif op.op == "set":
            (route.request_set if op.request else route.response_set)[op.name] = value
        else:
            (route.request_add if op.request else route.response_add).setdefault(
                op.name, []).append(value)

    def check_shadowing(self) -> None:
        """Apache's order, where portico's longest prefix would differ: the first
        server-level ProxyPass wins, the last matching <Location> wins, and a
        <Location>'s ProxyPass comes before every server-level one."""
        routes = self.all_routes
        for index, (route, in_location) in enumerate(routes):
            for other_index, (other, other_in_location) in enumerate(routes):
                if other_index == index or other.host != route.host:
                    continue
                if not _under(route.path, other.path):
                    continue
                if (not in_location and not other_in_location and other_index < index) or (
                        in_location and other_in_location and other_index > index) or (
                        not in_location and other_in_location):
                    self._shadowed(route, other)
                    break

    def _shadowed(self, route: Route, by: Route) -> None:
        self.result.refuse(route.origin, f"Apache sends {route.path} to the ProxyPass of "
                           f"{by.path} (line {by.origin.line}) first, so this one never "
                           "runs; remove it or put the longer path first", "")

    def certificate(self, section: Directive, scope: _Scope, ssl: list[Directive]) -> None:
        values = {d.key: d.args[0] for d in ssl if d.args}
        if values.get("sslengine", "off").lower() != "on":
            return
        cert, key = values.get("sslcertificatefile"), values.get("sslcertificatekeyfile")
        hosts = [h for h in scope.hosts if h]
        if not cert or not key or not hosts:
            self.refuse(section, "SSLEngine on needs SSLCertificateFile, "
                        "SSLCertificateKeyFile and a ServerName")
            return
        self.result.certificates.append(Certificate(hosts, cert, key, section.origin))


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or prefix == ""
