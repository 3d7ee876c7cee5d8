"""Property: whatever a grammar of the inventory schema admits is inert where it goes.

Each string type in the schema's ``$defs`` promises something about every value it
lets through: no control character anywhere (no newline, so no second directive,
ceph.conf line or Corefile block); for the word-like types (names, paths, images,
addresses, user names, ...) also no blank, no shell or config metacharacter and no
leading '-'; for node paths no '.' or '..' component. Hypothesis draws values from the
grammar itself (hypothesis.strategies.from_regex) and checks the promise, and checks
that the two validators (jsonschema-rs decides, python jsonschema explains) agree on
each value, as on values with a hostile character put in.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.inventory.schema import _ecma, grammar_error, schema

DEFS: dict[str, Any] = schema()["$defs"]
GRAMMARS = sorted(n for n, d in DEFS.items() if d.get("type") == "string" and "pattern" in d)

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What a shell, a unit file, an INI or a Corefile reads as more than a character.
META = re.compile(r"[\s;&|$`'\"()<>*?!#\\{}\[\]=,~%^]")
WORDS = {
    "name", "dns_name", "host", "ip_address", "ipv4_address", "cidr", "absolute_path",
    "image", "registry", "version", "linux_user", "bmc_user", "snmp_user", "env_name",
    "cert_name", "interface", "port_name", "pool_name", "mac", "oid_template",
    "ceph_option", "disk_device", "wwn", "disk_serial", "duration", "email", "host_port",
}  # fmt: skip
# One line of anything printable: free text, files on the operator's machine.
LINES = {"text", "operator_path"}
HOSTILE = ["\n", "\r", "\x00", "\x1b", "\u2028", ";", "$(", "`", "'", '"', "{", "}", "..", " "]


def _inert(grammar: str, value: str) -> list[str]:
    """What is wrong with ``value`` for where ``grammar``'s values go (empty: nothing)."""
    wrong = []
    if CONTROL.search(value) or any(unicodedata.category(c) in ("Zl", "Zp") for c in value):
        wrong.append("a control character")
    if grammar in WORDS:
        word = value.replace("{outlet}", "0") if grammar == "oid_template" else value
        word = word.replace(" ", "_") if grammar == "ceph_option" else word
        if META.search(word):
            wrong.append(f"a metacharacter {META.search(word)!r}")
        if value.startswith("-"):
            wrong.append("a leading '-' (read as an option)")
    if grammar in ("absolute_path", "disk_device"):
        parts = value.split("/")
        if parts[0] != "" or any(p in ("", ".", "..") for p in parts[1:]):
            wrong.append("not absolute and normalised")
    if grammar == "url" and re.search(r"[\s\"'`<>\\]", value):
        wrong.append("a blank, quote or backslash")
    if grammar == "ceph_value" and (re.search(r"[#;\"'\\]", value) or value != value.strip()):
        wrong.append("a ceph.conf comment, quote, escape or padding")
    if grammar == "size" and re.search(r"\s\s|[^\S ]", value):
        wrong.append("a blank other than one space")
    return wrong


def test_every_grammar_says_what_it_promises() -> None:
    assert set(GRAMMARS) <= WORDS | LINES | {"url", "ceph_value", "size"}


@cache
def _fast(grammar: str) -> Any:
    return jsonschema_rs.validator_for(DEFS[grammar])


def _fast_accepts(grammar: str, value: str) -> bool:
    return bool(_fast(grammar).is_valid(value))


@pytest.mark.parametrize("grammar", GRAMMARS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_what_a_grammar_admits_is_inert(grammar: str, data: st.DataObject) -> None:
    limit = DEFS[grammar].get("maxLength", 10_000)
    value = data.draw(
        st.from_regex(_ecma(DEFS[grammar]["pattern"]), fullmatch=True).filter(
            lambda v: len(v) <= limit
        )
    )
    assert grammar_error(grammar, value) is None
    assert _fast_accepts(grammar, value), value
    assert _inert(grammar, value) == [], value


@pytest.mark.parametrize("grammar", GRAMMARS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_hostile_character_is_refused_or_inert(grammar: str, data: st.DataObject) -> None:
    """A valid value with a hostile character put in: both validators give one answer,
    and an answer of yes is still inert."""
    limit = DEFS[grammar].get("maxLength", 10_000)
    good = data.draw(
        st.from_regex(_ecma(DEFS[grammar]["pattern"]), fullmatch=True).filter(
            lambda v: len(v) < limit
        )
    )
    at = data.draw(st.integers(min_value=0, max_value=len(good)))
    value = good[:at] + data.draw(st.sampled_from(HOSTILE)) + good[at:]
    accepted = grammar_error(grammar, value) is None
    assert _fast_accepts(grammar, value) == accepted, value
    if accepted:
        assert _inert(grammar, value) == [], value
