"""The local loop as a newcomer runs it, in real processes: ``python3 -m devstack serve``,
``token``, curl-like calls, ``python -m obo diagnose`` on serve's settings, Ctrl+C, a busy
port, and the local Functions host refusing to start without its settings."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _env(state: Path) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("OBO_", "IDENTITY_", "AZURE_"))
    }
    return {**base, "OBO_DEVSTACK_STATE": str(state), "PYTHONUNBUFFERED": "1"}


def devstack(*args: str, state: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=ROOT,
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], Path, list[str]]]:
    state = tmp_path_factory.mktemp("state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "serve", "--port", "0"],
        cwd=ROOT,
        env=_env(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:  # the banner ends with this line once everything listens
        lines.append(line)
        if line.startswith("Serving until Ctrl+C."):
            break
    else:
        pytest.fail(
            "serve ended early:\n" + "".join(lines) + (proc.stderr.read() if proc.stderr else "")
        )
    yield proc, state, lines
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def test_serve_prints_the_stand_ins_and_what_to_run_next(served):
    _, _, lines = served
    out = "".join(lines)
    for name in ("Entra ID", "Key Vault", "Graph", "Orders API", "Function app"):
        assert f"  {name}" in out
    assert "python3 -m devstack token --user alice" in out
    assert "python -m obo diagnose --settings" in out
    assert "eyJ" not in out


def test_serve_writes_its_settings_for_this_user_only(served):
    _, state, _ = served
    for name in ("local.settings.json", "serve.json"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    values = json.loads((state / "local.settings.json").read_text())["Values"]
    assert values["OBO_CA_BUNDLE"] == str((state / "ca.pem").resolve())
    assert values["OBO_DOWNSTREAM__ORDERS__RELAY"] == "true"


def test_token_then_profile_and_the_orders_relay_like_curl(served):
    _, state, _ = served
    app = json.loads((state / "serve.json").read_text())["app"]
    token = devstack("token", "--user", "alice", state=state)
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
    profile = requests.get(f"{app}/api/profile", headers=headers, timeout=30)
    assert profile.status_code == 200, profile.text
    assert profile.json()["groups"] == ["All Contoso", "Sales"]
    orders = requests.get(f"{app}/api/apis/orders/orders", headers=headers, timeout=30)
    assert orders.status_code == 200 and len(orders.json()["value"]) == 2


def test_token_for_a_guest_reads_with_diagnose_on_serves_settings(served):
    _, state, _ = served
    token = devstack("token", "--user", "carol", "--tenant", "contoso", state=state)
    assert token.returncode == 0, token.stderr
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "obo",
            "diagnose",
            "--json",
            "--settings",
            str(state / "local.settings.json"),
        ],
        cwd=ROOT,
        env=_env(state),
        input=token.stdout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    body = json.loads(report.stdout)
    assert body["usable_for_obo"] is True and body["guest"] is True
    assert token.stdout.strip().split(".")[2] not in report.stdout


def test_token_for_another_audience_and_a_refused_ask(served):
    _, state, _ = served
    orders = devstack("token", "--user", "alice", "--api", "orders", state=state)
    assert orders.returncode == 0
    claims = json.loads(base64.urlsafe_b64decode(orders.stdout.split(".")[1] + "=="))
    assert claims["scp"] == "Orders.Read"
    refused = devstack("token", "--user", "bob", "--scope", "Everything", state=state)
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "python3 -m devstack token: OBO middle tier has no scope Everything"
    )
    for ask in (["--tenant", "nowhere"], ["--user", "mallory"]):
        unknown = devstack("token", *ask, state=state)
        assert (unknown.returncode, unknown.stderr.strip()) == (
            2,
            "python3 -m devstack token: unknown user, tenant or api",
        )
    outsider = devstack("token", "--user", "bob", "--tenant", "contoso", state=state)
    assert (
        outsider.stderr.strip()
        == "python3 -m devstack token: Bob is not in contoso.onmicrosoft.com"
    )


def test_a_busy_port_is_one_line(served):
    _, state, _ = served
    app = json.loads((state / "serve.json").read_text())["app"]
    port = app.rsplit(":", 1)[1]
    busy = devstack("serve", "--port", port, state=state.parent / "other")
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines() == [
        f"python3 -m devstack serve: port {port} is already in use (another serve, demo or func "
        "start?); stop it, or pass --port N (0 picks a free port)."
    ]
    assert "Traceback" not in busy.stdout + busy.stderr


def test_ctrl_c_ends_serve_with_one_line_and_removes_its_state(served):
    proc, state, _ = served
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err.strip() == "Stopped."
    assert "Traceback" not in out + err
    assert not (state / "serve.json").exists()
    gone = devstack("token", state=state)
    assert (gone.returncode, gone.stderr.strip()) == (
        1,
        "python3 -m devstack token: no devstack is serving; start `python3 -m devstack serve` first.",
    )


def test_functions_host_without_settings_names_them_at_start(tmp_path):
    app = tmp_path / "function_app.py"
    app.write_text((ROOT / "function_app.py").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "devstack.functions_host", "--app", str(app), "--port", str(port)],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "the app cannot start; fix these settings" in result.stderr
    for name in ("OBO_TENANT_ID", "OBO_CLIENT_ID", "OBO_KEY_VAULT_URL", "OBO_CERTIFICATE_NAME"):
        assert f"Setting {name} " in result.stderr
    assert "python3 -m devstack serve" in result.stderr
    assert "Traceback" not in result.stderr
