"""``portico import iis``: what each element becomes, and hostile or broken XML."""

from __future__ import annotations

import pytest

from portico.config.load import parse
from portico.importers.emit import Untranslated, emit
from portico.importers.iis import parse_iis
from portico.importers.model import UnreadableConfig


def rules_of(xml: str) -> str:
    return emit(parse_iis(xml.encode(), "web.config"))


def rule(inner: str, attributes: str = 'name="r"') -> str:
    return f"<rewrite><rules><rule {attributes}>{inner}</rule></rules></rewrite>"


@pytest.mark.parametrize(("action", "expected"), [
    ('<action type="Redirect" url="/x" />', 'action = "redirect"\nurl = "/x"\nstatus = 301'),
    ('<action type="Redirect" url="/x" redirectType="Found" />', "status = 302"),
    ('<action type="Redirect" url="/x" redirectType="SeeOther" />', "status = 303"),
    ('<action type="Redirect" url="/x" redirectType="Temporary" />', "status = 307"),
    ('<action type="Rewrite" url="/x" appendQueryString="false" />', 'query = "replace"'),
    ('<action type="CustomResponse" statusCode="403" statusReason="Forbidden" '
     'statusDescription="no" />', 'action = "respond"\nstatus = 403\nreason = "Forbidden"\nbody = "no"'),
    ('<action type="AbortRequest" />', 'action = "abort"'),
    ('<action type="None" />', 'action = "none"'),
])
def test_each_action_type(action: str, expected: str) -> None:
    text = rules_of(rule(f'<match url="^a" />{action}'))
    assert expected in text
    parse(text, "imported.toml")


def test_the_defaults_iis_leaves_out_are_not_written() -> None:
    text = rules_of(rule('<match url="^a(.*)" /><action type="Rewrite" url="/b{R:1}" />'))
    assert "ignore_case" not in text and "query" not in text and "action" not in text
    config = parse(text, "imported.toml")
    assert config.rewrite.rule[0].dialect == "iis"


def test_conditions_match_any_and_track_all_captures() -> None:
    text = rules_of(rule(
        '<match url=".*" /><conditions logicalGrouping="MatchAny" trackAllCaptures="true">'
        '<add input="{HTTP_HOST}" pattern="^a$" ignoreCase="false" negate="true" />'
        '<add input="{REQUEST_FILENAME}" matchType="IsFile" /></conditions>'
        '<action type="None" />'))
    config = parse(text, "imported.toml")
    imported = config.rewrite.rule[0]
    assert imported.match_any and imported.track_all_captures
    first, second = imported.conditions
    assert (first.negate, first.ignore_case) == (True, False)
    assert second.match_type == "is_file"


def test_server_variables_set_request_headers() -> None:
    text = rules_of(rule('<match url="x" /><serverVariables><set name="HTTP_X_ORIGINAL_HOST" '
                         'value="{HTTP_HOST}" /></serverVariables>'
                         '<action type="Rewrite" url="http://127.0.0.1:1/{R:0}" />'))
    config = parse(text, "imported.toml")
    assert config.rewrite.rule[0].request_headers == {"X-Original-Host": "{HTTP_HOST}"}
    assert config.rewrite.proxy_hosts == ["127.0.0.1:1"]


def test_global_rules_come_before_the_sites() -> None:
    text = rules_of('<rewrite><rules><rule name="site"><match url="a" /><action type="None" />'
                    '</rule></rules><globalRules><rule name="global"><match url="b" />'
                    '<action type="None" /></rule></globalRules></rewrite>')
    assert [r.name for r in parse(text, "x.toml").rewrite.rule] == ["global", "site"]


@pytest.mark.parametrize(("inner", "reason"), [
    ('<match url="a" /><action type="CustomResponse" statusCode="403" subStatusCode="2" />',
     "subStatusCode"),
    ('<match url="a" /><action type="Redirect" url="/" redirectType="Permanent308" />',
     "redirectType"),
    ('<match url="a" /><action type="Rewrite" url="/" frobnicate="1" />', "frobnicate"),
    ('<match url="a" /><serverVariables><set name="REMOTE_ADDR" value="1" /></serverVariables>'
     '<action type="None" />', "REMOTE_ADDR"),
    ('<match url="a" /><serverVariables><set name="HTTP_X" value="1" replace="false" />'
     '</serverVariables><action type="None" />', "replace"),
    ('<match url="a" /><conditions><add input="{A}" matchType="IsSymlink" /></conditions>'
     '<action type="None" />', "matchType"),
    ('<action type="None" />', "<match>"),
    ('<match url="a" /><action type="None" /><extra />', "<extra>"),
    ('<match url="a" ignoreCase="yes" /><action type="None" />', "ignoreCase"),
])
def test_what_cannot_be_translated_is_an_error_with_its_line(inner: str, reason: str) -> None:
    xml = f'<rewrite>\n<rules>\n<rule name="bad">{inner}</rule>\n</rules>\n</rewrite>'
    imported = parse_iis(xml.encode(), "web.config")
    with pytest.raises(Untranslated) as caught:
        emit(imported)
    (problem,) = caught.value.problems
    assert str(problem).startswith('web.config:3: <rule name="bad">: ')
    assert reason in str(problem)
    partial = emit(imported, allow_partial=True)  # as a comment, with the XML under it
    assert "# NOT TRANSLATED web.config:3:" in partial and '#     <rule name="bad">' in partial
    parse(partial, "imported.toml")


def test_elements_outside_rewrite_are_named() -> None:
    imported = parse_iis(b"<configuration>\n<system.webServer>\n<handlers />\n"
                         b"<rewrite><rules/></rewrite>\n</system.webServer>\n"
                         b"<appSettings/>\n</configuration>", "web.config")
    assert [str(p) for p in imported.problems] == [
        "web.config:3: <handlers>: <handlers> has no portico equivalent (inside "
        "<system.webServer>)",
        "web.config:6: <appSettings>: <appSettings> has no portico equivalent (inside "
        "<configuration>)",
    ]


def test_malformed_xml_names_the_line() -> None:
    with pytest.raises(UnreadableConfig) as caught:
        parse_iis(b"<configuration>\n<system.webServer>\n<rewrite>\n</system.webServer>",
                  "web.config")
    assert str(caught.value).startswith("web.config:4: XML: malformed XML:")


def test_entities_are_refused_before_parsing() -> None:
    bomb = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
            b"<rewrite><rules><rule name='&lol2;'/></rules></rewrite>")
    with pytest.raises(UnreadableConfig, match=r"web\.config:2: <!DOCTYPE>: a DOCTYPE is not "):
        parse_iis(bomb, "web.config")


def test_an_unknown_root_is_refused() -> None:
    with pytest.raises(UnreadableConfig, match="expected <configuration>"):
        parse_iis(b"<html/>", "web.config")


def test_outbound_rules_on_headers() -> None:
    text = rules_of('<rewrite><outboundRules><rule name="loc"><match serverVariable='
                    '"RESPONSE_Location" pattern="^http://a/(.*)" /><action type="Rewrite" '
                    'value="/b/{R:1}" /></rule></outboundRules></rewrite>')
    (outbound,) = parse(text, "x.toml").rewrite.outbound
    assert (outbound.header, outbound.value) == ("Location", "/b/{R:1}")


def test_unknown_attributes_on_sets_and_rule_lists_are_named() -> None:
    imported = parse_iis(b'<rewrite>\n<rules x="1">\n<rule name="r"><match url="a" />'
                         b'<serverVariables><set name="HTTP_X" value="1" frob="2" />'
                         b'</serverVariables><action type="None" /></rule>\n</rules></rewrite>',
                         "web.config")
    assert [str(p) for p in imported.problems] == [
        "web.config:2: <rules>: <rules> attribute 'x' has no portico equivalent",
        "web.config:3: <rule name=\"r\">: <set> attribute 'frob' has no portico equivalent",
    ]
