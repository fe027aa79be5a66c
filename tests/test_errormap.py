"""The shared error mapping: every backend's rule table ends with a catch-all, rules match by
status, code and text, messages are one line without secrets, and each Stainless-SDK backend
maps lost connections and non-JSON replies the same way."""

from __future__ import annotations

import importlib
import json

import pytest

from tuneport.errors import AuthError, NotFoundError, ProviderError, redact, register_secret
from tuneport.providers import openai, together
from tuneport.providers.errormap import ErrorRule, apply_rules, body_message, one_line
from tuneport.providers.fireworks import errors as fireworks
from tuneport.providers.sdk import Service
from tuneport.providers.vertex import errors as vertex_errors

TABLES = {
    "openai": openai.ERROR_RULES,
    "vertex": vertex_errors.ERROR_RULES,
    "together": together.ERROR_RULES,
    "fireworks": fireworks.ERROR_RULES,
}
SERVICES: dict[str, Service] = {
    "openai": openai.API,
    "together": together.API,
    "fireworks": fireworks.API,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_ends_with_a_rule_that_matches_anything(name: str) -> None:
    rules = TABLES[name]
    last = rules[-1]
    assert not last.status and not last.codes and not last.contains
    err = apply_rules(
        rules,
        status=418,
        code="teapot",
        message="odd",
        values={"model": "m", "project": "p", "location": "l", "account": "a"},
    )
    assert type(err) is ProviderError and "418" in err.message


def test_rules_match_on_every_criterion_and_fill_the_templates() -> None:
    rules = (
        ErrorRule(AuthError, "no key for {who}: {msg}", "fix {who}", status=frozenset({401})),
        ErrorRule(NotFoundError, "gone ({status})", "look", codes=frozenset({"gone"})),
        ErrorRule(ProviderError, "slow: {msg}", "wait", contains=("slow down",)),
        ErrorRule(ProviderError, "other {status}", "x"),
    )
    err = apply_rules(rules, status=401, code=None, message="bad\nkey", values={"who": "me"})
    assert type(err) is AuthError and err.message == "no key for me: bad key"
    assert err.hint == "fix me"
    err = apply_rules(rules, status=404, code="gone", message="")
    assert type(err) is NotFoundError and err.message == "gone (404)"
    assert apply_rules(rules, status=400, code=None, message="Please SLOW DOWN").hint == "wait"
    assert apply_rules(rules, status=None, code=None, message="?").message == "other ?"
    either = (
        ErrorRule(NotFoundError, "gone", "x", codes=frozenset({"gone"}), contains=("vanished",)),
        ErrorRule(ProviderError, "other", "x"),
    )
    for code, message in (("gone", ""), (None, "it VANISHED"), ("other", "it vanished")):
        assert apply_rules(either, status=404, code=code, message=message).message == "gone"
    assert apply_rules(either, status=404, code="other", message="?").message == "other"


def test_a_secret_in_the_servers_message_is_redacted() -> None:
    register_secret("sk-test-ERRORMAP-0123456789")
    rules = (ErrorRule(ProviderError, "refused: {msg}", "x"),)
    err = apply_rules(rules, status=400, code=None, message="bad key sk-test-ERRORMAP-0123456789")
    assert "ERRORMAP" not in err.message


def test_a_secret_holding_a_shorter_secret_is_hidden_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen in the suite: an environment key ``sk-test`` was replaced first and left the rest
    of a longer registered key in the message. Secrets are replaced longest first."""
    from tuneport.providers import registry

    registry.backend("openai")  # its descriptor declares OPENAI_API_KEY a secret
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tes")
    register_secret("sk-tes-LONGER-SECRET-42")
    assert redact("key sk-tes-LONGER-SECRET-42 and sk-tes") == "key *** and ***"


def test_body_message_reads_both_error_shapes() -> None:
    assert body_message({"error": {"message": "openai style"}}) == "openai style"
    assert body_message({"code": 5, "message": "grpc style", "details": []}) == "grpc style"
    assert body_message("plain text") == "plain text"
    assert body_message({"detail": 1}) is None and body_message("  ") is None
    assert one_line("a\n  b", limit=3) == "a b" and one_line("abcdef", limit=4) == "abc…"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_lost_connections_and_non_json_replies_read_the_same_for_each_sdk(name: str) -> None:
    service = SERVICES[name]
    module = importlib.import_module(service.module)  # every extra is installed in CI
    # Each SDK's errors take a request of the HTTP library that SDK itself runs on (openai 3.x:
    # httpx2; together and fireworks: httpx): build it with that one, as the SDK would.
    http = importlib.import_module(f"{service.module}._exceptions")
    http_lib = http.httpx2 if hasattr(http, "httpx2") else http.httpx
    request = http_lib.Request("POST", "http://127.0.0.1:9/x")
    lost = module.APIConnectionError(request=request)
    err = service.map_error(lost, base_url="http://127.0.0.1:9")
    assert err.message == f"cannot reach {service.title} at http://127.0.0.1:9"
    assert service.url_env in (err.hint or "")
    timeout = service.map_error(module.APITimeoutError(request=request), base_url="u")
    assert timeout.message.startswith(f"timed out talking to {service.title}")
    garbled = service.map_error(json.JSONDecodeError("x", "{", 0), base_url="u")
    assert "not JSON" in garbled.message and service.owns(json.JSONDecodeError("x", "{", 0))
    assert service.owns(lost) and not service.owns(ValueError("mine"))
