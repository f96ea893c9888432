"""docs/adopting.md stays true: its function, pasted into function_app.py, serves over HTTP
against the stand-ins with serve's settings, and behaves as the page and its test say."""

from __future__ import annotations

import io
import re
from pathlib import Path

import requests

from devstack.functions_host import FunctionsHost

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "adopting.md").read_text()


def snippet(after: str) -> str:
    section = PAGE[PAGE.index(after) :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_pages_function_works_as_written(app_settings, stack, tmp_path):
    app = tmp_path / "function_app.py"
    app.write_text(
        (ROOT / "function_app.py").read_text() + "\n\n" + snippet("## 2. Write the function")
    )
    with FunctionsHost(app, port=0, stream=io.StringIO()) as host:

        def get(token: str) -> requests.Response:
            return requests.get(
                f"{host.url}/api/dashboard",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )

        token = stack.seed.user_token(stack.seed.alice, scopes=["access_as_user", "Dashboard.Read"])
        reply = get(token)
        assert reply.status_code == 200, reply.text
        assert reply.json()["orders"] == 2
        assert stack.entra.calls("token") == 2  # graph and orders: one exchange each
        stack.entra.reset_counters()
        assert get(token).status_code == 200
        assert stack.entra.calls("token") == 0
        refused = get(stack.seed.user_token(stack.seed.alice))
        assert refused.status_code == 403 and refused.json()["code"] == "OBO3014"


def test_the_page_names_settings_the_code_reads():
    for setting in re.findall(r"\b(OBO_DOWNSTREAM__ORDERS__[A-Z_]+)=", PAGE):
        assert setting.rsplit("__", 1)[1] in ("BASE_URL", "SCOPES", "TOKEN_TYPE", "RELAY")
