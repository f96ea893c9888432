"""obo/token_rules.py: one set of rules, so ``diagnose`` and the validator always agree, and
the v1 issuer of each cloud."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from devstack.keys import SigningKey
from obo import token_rules
from obo.claims import v1_issuer
from obo.config import Settings
from obo.diagnose import diagnose
from obo.errors import OboError
from obo.jwks import KeySource
from obo.transport import new_session
from obo.user_assertion import UserAssertion
from obo.validation import TokenValidator
from tests import tokens
from tests.unit.test_jwt_segments import SIGNED_ODD_CLAIMS

ANY = "any"  # the validator's answer is not spelled out; diagnose must still agree with it


def _signed(stack, claims: dict, *, drop: str = "") -> str:
    claims = {k: v for k, v in claims.items() if k != drop}
    return stack.directory.sign(stack.seed.contoso, claims)


def _alice(stack, **kwargs) -> str:
    return stack.seed.user_token(stack.seed.alice, **kwargs)


def _without(name: str) -> Callable:
    return lambda s: _signed(s, tokens.claims_of(_alice(s)), drop=name)


def _v1_app_token_without_idtyp(s) -> str:
    claims = tokens.claims_of(s.directory.app_token(s.seed.contoso, s.seed.spa, s.seed.api))
    return _signed(s, claims, drop="idtyp")


def _without_kid(s) -> str:
    return jwt.encode(tokens.claims_of(_alice(s)), s.seed.contoso.active_key.private_key, "RS256")


def _not_yet_valid(s) -> str:
    now = int(s.directory.clock())
    return _alice(s, extra={"nbf": now + 600, "iat": now + 600, "exp": now + 4200})


# (builder, what the validator answers: None accepts, else the code; what diagnose finds
# first offline when the signature, which it cannot check, is what the validator refuses)
CASES = {
    "member": (_alice, None),
    "member of another allowed tenant": (lambda s: s.seed.user_token(s.seed.bob), None),
    "guest": (lambda s: s.seed.user_token(s.seed.carol, s.seed.contoso), None),
    "v1 token": (lambda s: _alice(s, version=1), None),
    "expired within the leeway": (lambda s: _alice(s, lifetime=-30), None),
    "expired": (lambda s: _alice(s, lifetime=-600), "OBO3008"),
    "not yet valid": (_not_yet_valid, "OBO3009"),
    "ID token": (
        lambda s: s.directory.id_token(s.seed.alice, s.seed.contoso, s.seed.spa),
        "OBO3010",
    ),
    "app-only token for API 1": (
        lambda s: s.directory.app_token(s.seed.contoso, s.seed.function_identity, s.seed.api),
        "OBO3011",
    ),
    "app-only token for Key Vault": (
        lambda s: s.directory.app_token(s.seed.contoso, s.seed.function_identity, s.seed.key_vault),
        "OBO3011",
    ),
    "v1 app-only token without idtyp": (_v1_app_token_without_idtyp, "OBO3011"),
    "B2C token": (lambda s: s.directory.b2c_token(s.seed.spa, s.seed.api), "OBO3012"),
    "Graph token": (
        lambda s: s.directory.user_token(
            s.seed.alice, s.seed.contoso, s.seed.spa, s.seed.graph, ["User.Read"]
        ),
        "OBO3013",
    ),
    "token for another API": (
        lambda s: s.directory.user_token(
            s.seed.alice, s.seed.contoso, s.seed.spa, s.seed.other_api, ["Orders.Read"]
        ),
        "OBO3007",
    ),
    "tenant not allowed": (lambda s: s.seed.user_token(s.seed.nina), "OBO3006"),
    "issuer of another tenant": (
        lambda s: _alice(s, extra={"iss": s.directory.issuer_v2(s.seed.fabrikam.id)}),
        "OBO3005",
    ),
    "issuer of another cloud": (
        lambda s: _alice(
            s, extra={"iss": f"https://login.microsoftonline.us/{s.seed.contoso.id}/v2.0"}
        ),
        "OBO3005",
    ),
    "missing scope": (lambda s: _alice(s, scopes=["Something.Else"]), "OBO3014"),
    "no oid": (_without("oid"), "OBO3016"),
    "no tid": (_without("tid"), "OBO3015"),
    "no exp": (_without("exp"), "OBO3017"),
    "no iss": (_without("iss"), "OBO3017"),
    "alg none": (lambda s: tokens.alg_none(_alice(s)), "OBO3002"),
    "HS256 keyed with the public key": (
        lambda s: tokens.hs256_with_public_key(_alice(s), s.seed.contoso.active_key),
        "OBO3002",
    ),
    "no kid": (_without_kid, "OBO3017"),
    # the signature alone is wrong: diagnose, offline, finds nothing or what comes after it
    "claims changed after signing": (
        lambda s: tokens.tampered(_alice(s), oid="x"),
        "OBO3004",
        None,
    ),
    "signed by a key no tenant publishes": (
        lambda s: tokens.resigned_with(_alice(s), SigningKey(), kid=s.seed.contoso.active_key.kid),
        "OBO3004",
        None,
    ),
    "signed with the key the header supplies": (
        lambda s: tokens.resigned_with(_alice(s), (k := SigningKey()), jwk=k.jwk()),
        "OBO3003",
        None,
    ),
    "signed by another tenant": (
        lambda s: tokens.resigned_with(_alice(s), s.seed.fabrikam.active_key),
        "OBO3003",
        None,
    ),
    "tid of another tenant": (
        lambda s: _alice(s, extra={"tid": s.seed.fabrikam.id}),
        "OBO3003",
        "OBO3005",
    ),
    **{
        f"odd {odd}": (lambda s, odd=odd: _alice(s, extra=odd), ANY)
        for odd in [*SIGNED_ODD_CLAIMS, *tokens.ODD_CLAIMS, *tokens.IRRELEVANT_ODD_CLAIMS]
    },
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_diagnose_finds_first_what_the_validator_refuses_and_nothing_it_accepts(
    service, stack, clock, case
):
    builder, refused, *offline = case
    token = builder(stack)
    try:
        service.validator.validate(UserAssertion(token))
        answer = None
    except OboError as exc:
        answer = exc.code
    if refused != ANY:
        assert answer == refused
    found = [f.code.value for f in diagnose(token, stack.settings(), now=clock()).findings]
    expected = offline[0] if offline else answer
    assert found[:1] == ([] if expected is None else [expected]), (answer, found)
    if answer is None:
        assert found == []


def test_a_token_expired_within_the_leeway_is_noted_not_refused(stack, clock):
    report = diagnose(_alice(stack, lifetime=-30), stack.settings(), now=clock())
    assert report.usable_for_obo and report.as_dict()["expired"] is True
    assert any("API 1 still accepts it" in note for note in report.notes)


# -- the v1 issuer of each cloud ------------------------------------------------------------
TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CHINA = "https://login.chinacloudapi.cn"


@pytest.mark.parametrize(
    ("host", "sts"),
    [
        ("https://login.microsoftonline.com", "https://sts.windows.net"),  # global, and GCC
        ("https://login.microsoftonline.us", "https://sts.windows.net"),  # US Government
        (CHINA, "https://sts.chinacloudapi.cn"),  # Azure China (21Vianet)
        ("https://login.partner.microsoftonline.cn", "https://sts.chinacloudapi.cn"),
        ("https://127.0.0.1:8443", "https://sts.windows.net"),  # the local stand-in
    ],
)
def test_v1_issuer_is_the_sts_of_the_authority_hosts_cloud(host, sts):
    assert v1_issuer(host, TID) == f"{sts}/{TID}/"


def _china(**values: str) -> Settings:
    return Settings.from_env(
        {
            "OBO_TENANT_ID": TID,
            "OBO_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
            "OBO_AUTHORITY_HOST": CHINA,
            "OBO_KEY_VAULT_URL": "https://kv.vault.azure.cn",
            "OBO_CERTIFICATE_NAME": "obo",
            **values,
        }
    )


def test_in_azure_china_the_issuer_rule_takes_sts_chinacloudapi_and_refuses_sts_windows():
    context = token_rules.Context(_china(), time.time)
    china = {"ver": "1.0", "tid": TID, "iss": f"https://sts.chinacloudapi.cn/{TID}/"}
    assert token_rules.issuer({}, china, context) is None
    public = token_rules.issuer({}, {**china, "iss": f"https://sts.windows.net/{TID}/"}, context)
    assert public is not None and public.code.value == "OBO3005"
    assert f"expected 'https://sts.chinacloudapi.cn/{TID}/'" in public.message
    v2 = {"ver": "2.0", "tid": TID, "iss": f"{CHINA}/{TID}/v2.0"}
    assert token_rules.issuer({}, v2, context) is None


def test_validator_with_a_china_authority_accepts_the_china_v1_issuer_only(stack, clock):
    seed = stack.seed
    settings = Settings.from_env(stack.settings(OBO_AUTHORITY_HOST=CHINA))
    # The keys still come from the stand-in: only the issuer rule reads the authority host.
    keys = KeySource(new_session(settings.ca_bundle), stack.entra.base_url, clock)
    validator = TokenValidator(settings, keys, clock)
    china = f"https://sts.chinacloudapi.cn/{seed.contoso.id}/"
    caller = validator.validate(UserAssertion(_alice(stack, version=1, extra={"iss": china})))
    assert (caller.tid, caller.version) == (seed.contoso.id, "1.0")
    with pytest.raises(OboError) as refused:
        validator.validate(
            UserAssertion(_alice(stack, version=1))
        )  # https://sts.windows.net/{tid}/
    assert refused.value.code == "OBO3005"
    assert china in refused.value.detail


def test_diagnose_with_china_settings_judges_the_v1_issuer_alike():
    claims = {
        "aud": "api://11111111-2222-3333-4444-555555555555",
        "tid": TID,
        "ver": "1.0",
        "scp": "access_as_user",
        "oid": TID,
        "exp": time.time() + 600,
    }
    values = {
        "OBO_TENANT_ID": TID,
        "OBO_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "OBO_AUTHORITY_HOST": CHINA,
    }
    key = SigningKey()
    usable = diagnose(key.sign({**claims, "iss": f"https://sts.chinacloudapi.cn/{TID}/"}), values)
    assert [f.code.value for f in usable.findings if f.code.value != "OBO1001"] == []
    public = diagnose(key.sign({**claims, "iss": f"https://sts.windows.net/{TID}/"}), values)
    assert [(f.code.value, f.aadsts) for f in public.findings if f.code.value != "OBO1001"] == [
        ("OBO3005", 50013)
    ]
