"""mod_rewrite and mod_alias redirects read into rules in Apache's own syntax.

The rule engine reads ``$n``, ``%n``, ``%{VAR}`` and ``${map:key|default}`` as
Apache does, so patterns and substitutions are kept as written; what is decided
here is what the flags mean as an action (FL: docs/manual/rewrite/flags.xml), and
the traps of the semantics notes: ``[R]`` defaults to 302, an absolute URL to
another host without ``[P]`` is an external redirect, not a proxy.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from portico.importers.apache_syntax import Directive
from portico.importers.model import Action, Condition, Imported, RewriteMap, Rule

LONG_FLAGS = {
    "last": "L", "redirect": "R", "nocase": "NC", "qsappend": "QSA", "qsdiscard": "QSD",
    "proxy": "P", "forbidden": "F", "gone": "G", "chain": "C", "skip": "S", "next": "N",
    "noescape": "NE", "passthrough": "PT", "env": "E", "cookie": "CO", "type": "T",
    "handler": "H", "nosubreq": "NS", "qslast": "QSL", "ornext": "OR", "novary": "NV",
}
KEPT_FLAGS = {"C", "S", "N", "B", "NE", "END", "BNP", "BCTLS", "BNE", "QSL", "NS"}
"""Flags the engine reads itself; the others become the rule's action."""
REFUSED_FLAGS = {
    "E": "environment variables", "CO": "setting cookies", "T": "forcing a MIME type",
    "H": "handlers", "PT": "passing through to Alias (portico serves no files)",
    "UNSAFEALLOW3F": "re-substituting an encoded '?' (refused for safety)",
    "UNSAFEPREFIXSTAT": "file-system substitutions",
}
REDIRECT_CODES = {"": 302, "temp": 302, "permanent": 301, "seeother": 303}
MAP_FUNCTIONS = {"tolower", "toupper", "escape", "unescape"}


def parse_flags(text: str) -> dict[str, str]:
    """``[L,R=301,NC]`` → ``{"L": "", "R": "301", "NC": ""}``."""
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(f"flags {text!r} must be written [FLAG,FLAG=value]")
    flags: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text[1:-1].split(","))):
        name, _, value = item.partition("=")
        short = LONG_FLAGS.get(name.lower(), name.upper())
        flags[short] = value
    return flags


class RewriteState:
    """The RewriteCond/RewriteRule lines of one scope, in order."""

    def __init__(self, result: Imported, hosts: list[str | None], on: bool,
                 port: str | None = None) -> None:
        self.result = result
        self.hosts = hosts
        self.host = hosts[0]
        self.on = on
        self.own_hosts = [host for host in hosts if host]
        self.port = port
        """A <VirtualHost *:PORT> beside others on other ports: its rules test the port."""
        self.pending: list[tuple[Directive, Condition]] = []
        self.rules: list[Rule] = []

    def refuse(self, directive: Directive, reason: str) -> None:
        self.result.refuse(directive.origin, reason, directive.text)

    def add(self, rule: Rule) -> None:
        """The rule once per ServerName/ServerAlias (a rule has one ``host``)."""
        if self.port is not None:
            if rule.conditions and any(c.or_next for c in rule.conditions):
                self.result.refuse(rule.origin, "an [OR] rule in a <VirtualHost> that shares "
                                   "its names with one on another port is not translated")
                return
            # first: %N refers to the last matched condition, which stays the rule's own
            rule.conditions.insert(0, Condition("%{SERVER_PORT}", self.port, ignore_case=False,
                                                match_type="="))
        for host in self.hosts:
            self.result.rules.append(replace(rule, host=host,
                                             conditions=list(rule.conditions)))

    def directive(self, directive: Directive) -> None:
        key = directive.key
        if key == "rewriteengine":
            return
        if key in ("rewriteoptions", "rewritebase"):
            self.refuse(directive, f"{directive.name} is not translated")
        elif not self.on:
            self.result.note(directive.origin, "RewriteEngine is not On here: Apache ignores "
                             "this line, and so does the import")
        elif key == "rewritecond":
            self.condition(directive)
        else:
            self.rule(directive)

    def finish(self) -> None:
        for directive, _ in self.pending:
            self.refuse(directive, "a RewriteCond with no RewriteRule after it")
        self.pending = []

    def condition(self, directive: Directive) -> None:
        args = directive.args
        if len(args) not in (2, 3):
            self.refuse(directive, "RewriteCond needs a test string, a pattern and "
                        "optional [flags]")
            return
        try:
            flags = parse_flags(args[2]) if len(args) == 3 else {}
        except ValueError as exc:
            self.refuse(directive, str(exc))
            return
        unknown = set(flags) - {"NC", "OR", "NV"}
        if unknown:
            self.refuse(directive, f"RewriteCond flag {sorted(unknown)[0]} is not translated")
            return
        pattern, negate = args[1], False
        if pattern.startswith("!"):
            pattern, negate = pattern[1:], True
        match_type = {"-f": "is_file", "-d": "is_directory"}.get(pattern, "pattern")
        if pattern in ("-s", "-l", "-L", "-h", "-x", "-F", "-U"):
            self.refuse(directive, f"the {pattern} test is not translated (only -f and -d)")
            return
        compare = re.match(r"(<=|>=|<|>|=|-eq|-ne|-lt|-le|-gt|-ge)(.*)\Z", pattern, re.S)
        if compare and match_type == "pattern":
            match_type, pattern = compare.group(1), compare.group(2)
        self.pending.append((directive, Condition(
            input=args[0], pattern=pattern if match_type not in ("is_file", "is_directory")
            else "", negate=negate,
            ignore_case="NC" in flags, match_type=match_type,
            or_next="OR" in flags)))

    def rule(self, directive: Directive) -> None:
        conditions, self.pending = self.pending, []
        args = directive.args
        if len(args) not in (2, 3):
            self.refuse(directive, "RewriteRule needs a pattern, a substitution and "
                        "optional [flags]")
            return
        try:
            flags = parse_flags(args[2]) if len(args) == 3 else {}
        except ValueError as exc:
            self.refuse(directive, str(exc))
            return
        refused = [f for f in flags if f.upper() in REFUSED_FLAGS]
        if refused:
            self.refuse(directive, f"[{refused[0]}] ({REFUSED_FLAGS[refused[0].upper()]}) is "
                        "not translated")
            return
        action = self.action(directive, args[1], flags)
        if action is None:
            return
        pattern, negate = args[0], False
        if pattern.startswith("!"):
            pattern, negate = pattern[1:], True
        rule = Rule(
            name=f"{Path(directive.origin.file).name}:{directive.origin.line}",
            dialect="apache", pattern=pattern, origin=directive.origin, action=action,
            negate=negate, ignore_case="NC" in flags,
            conditions=[condition for _, condition in conditions],
            stop=bool({"L", "END", "P", "F", "G"} & set(flags)) or (
                action.type == "respond"),
            flags={k: v for k, v in flags.items() if k in KEPT_FLAGS})
        self.add(rule)

    def action(self, directive: Directive, substitution: str,
               flags: dict[str, str]) -> Action | None:
        append = True if "QSA" in flags else False if "QSD" in flags else None
        if "F" in flags:
            return Action("respond", status=403)
        if "G" in flags:
            return Action("respond", status=410)
        if "R" in flags:
            code = REDIRECT_CODES.get(flags["R"].lower()) or (
                int(flags["R"]) if flags["R"].isdigit() else 0)
            if not 300 <= code <= 399:
                if 200 <= code <= 599:  # FL: a non-3xx code drops the substitution, like [L]
                    return Action("respond", status=code)
                self.refuse(directive, f"[R={flags['R']}]: use a status from 300 to 399, "
                            "temp, permanent or seeother")
                return None
            if "L" not in flags and "END" not in flags:
                self.refuse(directive, "[R] without [L]: Apache goes on rewriting the "
                            "redirect URL; add L")
                return None
            return Action("redirect", url=substitution, status=code, append_query=append)
        absolute = re.match(r"(?i)https?://", substitution) is not None
        if "P" in flags:
            if not absolute:
                self.refuse(directive, "[P] needs an absolute http:// or https:// URL")
                return None
            return Action("rewrite", url=substitution, append_query=append)
        if substitution == "-":
            return Action("none")
        if absolute:
            host = urlsplit(substitution.replace("$", "")).hostname or ""
            if host.lower() in self.own_hosts:  # MR: reduced to its path on the own host
                path = substitution[substitution.find("/", substitution.find("//") + 2):]
                return Action("rewrite", url=path if path.startswith("/") else "/",
                              append_query=append)
            return Action("redirect", url=substitution, status=302, append_query=append)
        return Action("rewrite", url=substitution, append_query=append)

    def proxy_pass_match(self, directive: Directive) -> None:
        if len(directive.args) != 2 or directive.args[1] == "!":
            self.refuse(directive, "ProxyPassMatch needs a regular expression and a URL "
                        "(no parameters, no '!')")
            return
        pattern, url = directive.args
        if not re.search(r"\$\d", url):  # MP: without $N the original URL is appended
            url = url.rstrip("/") + "%{REQUEST_URI}"
        self.add(Rule(name=f"{Path(directive.origin.file).name}:{directive.origin.line}",
                      dialect="apache", pattern=pattern, origin=directive.origin,
                      action=Action("rewrite", url=url), stop=True))


def redirect_rule(result: Imported, directive: Directive) -> tuple[Rule | None, str | None]:
    """``Redirect [status] /path [URL]`` or ``RedirectMatch [status] regex URL`` as a rule."""
    args = list(directive.args)
    key = directive.key
    status = {"redirectpermanent": "permanent", "redirecttemp": "temp"}.get(key, "temp")
    if args and not args[0].startswith("/") and not (key == "redirectmatch" and len(args) == 2):
        status = args.pop(0).lower()
    code = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}.get(
        status, int(status) if status.isdigit() else 0)
    if not code:
        result.refuse(directive.origin, f"status {status!r}: use permanent, temp, seeother, "
                      "gone or a number", directive.text)
        return None, None
    redirect = 300 <= code <= 399
    if len(args) != (2 if redirect else 1):
        result.refuse(directive.origin, f"{directive.name} needs a path and, for a 3xx "
                      "status, a URL", directive.text)
        return None, None
    if key == "redirectmatch":
        pattern, path, target = args[0], None, args[1] if redirect else ""
    else:
        path = args[0]
        pattern = "^" + re.escape(path.rstrip("/")) + ("(/.*)?$" if path != "/" else "(.*)$")
        target = (args[1].rstrip("/") + "$1") if redirect else ""
    action = (Action("redirect", url=target, status=code) if redirect
              else Action("respond", status=code))
    name = f"{Path(directive.origin.file).name}:{directive.origin.line}"
    return Rule(name=name, dialect="apache", pattern=pattern, origin=directive.origin,
                action=action, stop=True), path


def rewrite_map(result: Imported, directive: Directive) -> None:
    """``RewriteMap name txt:/path`` or ``int:tolower``; other types are refused."""
    if len(directive.args) != 2:
        result.refuse(directive.origin, "RewriteMap needs a name and TYPE:SOURCE",
                      directive.text)
        return
    name, source = directive.args
    kind, _, where = source.partition(":")
    if kind == "txt":
        path = Path(where)
        if not path.is_absolute():  # absolute: the output may be written anywhere
            path = (Path(directive.origin.file).parent / path).resolve()
        result.maps.append(RewriteMap(name, directive.origin, file=str(path)))
    elif kind == "int" and where in MAP_FUNCTIONS:
        result.maps.append(RewriteMap(name, directive.origin, function=where))
    else:
        result.refuse(directive.origin, f"RewriteMap type {kind}: only txt: files and "
                      "int:tolower|toupper|escape|unescape are translated", directive.text)
