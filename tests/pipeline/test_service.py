"""OboService's seams: the session a host or a test hands in carries every outbound call."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from requests.adapters import HTTPAdapter

from obo.config import Settings
from obo.service import OboService
from obo.transport import new_session
from tests.client import through


class CountingAdapter(HTTPAdapter):
    """A host's own adapter (a proxy, a retry policy, a recorder): here it notes each host."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.hosts.append(urlsplit(request.url).netloc)
        return super().send(request, **kwargs)


def _served(*standins) -> int:
    return sum(sum(standin.counters.values()) for standin in standins)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "OBO_CLIENT_CREDENTIAL": "managed_identity",
            "OBO_KEY_VAULT_URL": "",
            "OBO_CERTIFICATE_NAME": "",
        },
    ],
    ids=["certificate", "managed identity"],
)
def test_every_outbound_call_goes_through_the_session_handed_in(
    app_settings, monkeypatch, stack, clock, overrides
):
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    session = new_session(settings.ca_bundle)
    adapter = CountingAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)  # the identity endpoint (App Service: loopback http)
    service = OboService(settings, session=session, clock=clock)

    reply = through(service, stack.seed.user_token(stack.seed.alice))

    assert reply.status == 200, reply.body
    # signing keys and MSAL's discovery and token request (Entra), the certificate (Key
    # Vault) or the federated credential (identity endpoint), and API 2: all of them here
    standins = [stack.entra, stack.identity, stack.graph]
    if not overrides:
        standins.append(stack.vault)
    assert all(sum(standin.counters.values()) > 0 for standin in standins)
    assert len(adapter.hosts) == _served(stack.entra, stack.identity, stack.graph, stack.vault)
    assert {urlsplit(s.base_url).netloc for s in standins} == set(adapter.hosts)
