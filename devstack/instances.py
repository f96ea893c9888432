"""Function App instances as separate processes, the way Azure scales an app out.

Each instance is ``python -m devstack.functions_host --port 0`` with its own app settings, so
it has its own memory (caches, single flight) as an Azure instance does; whatever they share
must go through a store they all reach (``OBO_CACHE_URL``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

import requests

ROOT = Path(__file__).resolve().parent.parent


class Instance:
    """One host process; ``url`` once its route table is printed; its log in ``log``."""

    def __init__(self, settings: dict[str, str], log: Path, *, drop: tuple[str, ...] = ()) -> None:
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(settings, PYTHONUNBUFFERED="1")
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.functions_host", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
        )
        self.url = ""
        assert self.process.stdout is not None
        for raw in self.process.stdout:  # the route table, as Core Tools prints it
            found = re.search(rb"http://localhost:(\d+)/api/me", raw)
            if found:
                self.url = f"http://127.0.0.1:{int(found.group(1))}"
                break
        if not self.url:
            self.stop()
            raise RuntimeError(f"the host did not start; see {log}")

    def me(self, token: str) -> requests.Response:
        return requests.get(
            f"{self.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_file.close()
