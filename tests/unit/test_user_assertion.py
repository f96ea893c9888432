"""The caller's token as one value: hashed once, never shown."""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import pytest

from obo.user_assertion import UserAssertion


def test_digest_is_the_sha256_of_the_token_as_it_arrived(stack):
    token = stack.seed.user_token(stack.seed.alice)
    assert UserAssertion(token).digest == hashlib.sha256(token.encode()).digest()
    assert UserAssertion(token) == UserAssertion(token) != UserAssertion(token + "x")


def test_repr_str_and_log_lines_never_show_the_token(stack, caplog):
    token = stack.seed.user_token(stack.seed.alice)
    assertion = UserAssertion(token)
    logging.getLogger("obo.test").warning("assertion %s %r", assertion, assertion)
    for text in (repr(assertion), str(assertion), f"{assertion}", caplog.text):
        assert token not in text and token.split(".")[2] not in text
    assert repr(assertion).startswith("UserAssertion(sha256=")


def test_it_cannot_be_changed_or_given_another_digest(stack):
    assertion = UserAssertion(stack.seed.user_token(stack.seed.alice))
    with pytest.raises(dataclasses.FrozenInstanceError):
        assertion.raw = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        UserAssertion("token", b"digest")  # type: ignore[call-arg]


def test_a_request_hashes_the_token_once(service, stack, monkeypatch):
    # validation and the in-process cache key both use the digest authentication computed
    from tests.client import through

    token = stack.seed.user_token(stack.seed.alice).encode()
    assert through(service, token.decode()).status == 200  # warm: validated and cached
    hashed: list[bytes] = []
    real = hashlib.sha256

    class Spy:  # the real hash, noting each time the token is fed to one
        def __init__(self, data: bytes = b"", **kwargs) -> None:
            self._hash = real(**kwargs)
            self.update(data)

        def update(self, data: bytes) -> None:
            if token in bytes(data):
                hashed.append(data)
            self._hash.update(data)

        def __getattr__(self, name: str):
            return getattr(self._hash, name)

    monkeypatch.setattr(hashlib, "sha256", Spy)
    assert through(service, token.decode()).status == 200
    assert len(hashed) == 1
