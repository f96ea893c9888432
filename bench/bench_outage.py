"""How long requests wait during a Key Vault outage that falls in a certificate rotation.

Entra stops accepting the cached certificate while Key Vault answers every request with a
slow 503 (``--kv-latency`` each). Workers send requests of distinct users for ``--outage``
seconds, then Key Vault comes back. Prints the longest wait, the Key Vault calls made, the
answers, and how long until the first request was served again (issue 9, finding 9).

Run: ``.venv/bin/python -m bench.bench_outage`` (``--smoke`` for a short run). It uses only
the public service API, so it also runs against older versions of the code for comparison.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time

for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

from devstack.httpserver import Fault  # noqa: E402
from devstack.stack import CERTIFICATE_NAME, DevStack  # noqa: E402
from obo.config import Settings  # noqa: E402
from obo.service import OboService  # noqa: E402
from tests.client import through  # noqa: E402


def run(stack: DevStack, workers: int, outage: float, after: float, kv_latency: float) -> dict:
    seed = stack.seed
    svc = OboService(Settings.from_env())
    users = [stack.directory.add_user(f"Bench{i:03d}", seed.contoso) for i in range(workers)]

    def request(user) -> tuple[int, float]:
        token = seed.user_token(user)
        started = time.perf_counter()
        result = through(svc, token)
        return result.status, time.perf_counter() - started

    assert request(seed.alice)[0] == 200  # certificate version 1 loaded
    _, _, new_cert = stack.vault.create_certificate_version(CERTIFICATE_NAME)
    seed.api.certificates[:] = [new_cert]  # Entra: version 1 is no longer accepted
    stack.vault.reset_counters()
    stack.vault.inject(Fault(status=503, latency=kv_latency))

    began = time.perf_counter()
    recovered_at = began + outage
    during: list[float] = []
    answers: collections.Counter[int] = collections.Counter()
    first_ok_after: list[float] = []
    lock = threading.Lock()

    def worker(user) -> None:
        while time.perf_counter() < recovered_at + after:
            sent = time.perf_counter()
            status, waited = request(user)
            with lock:
                answers[status] += 1
                if sent < recovered_at:
                    during.append(waited)
                elif status == 200 and not first_ok_after:
                    first_ok_after.append(time.perf_counter() - recovered_at)

    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, recovered_at - time.perf_counter()))
    stack.vault.clear_faults()  # Key Vault is back
    kv_calls_during = stack.vault.calls("get_certificate")
    for thread in threads:
        thread.join()
    during.sort()
    return {
        "requests during the outage": len(during),
        "max wait during the outage (s)": f"{during[-1]:.1f}" if during else "-",
        "median wait during the outage (s)": f"{during[len(during) // 2]:.2f}" if during else "-",
        "Key Vault reads during the outage": kv_calls_during,
        "answers": dict(sorted(answers.items())),
        "first 200 after Key Vault returned (s)": (
            f"{first_ok_after[0]:.1f}" if first_ok_after else "none"
        ),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--outage", type=float, default=20.0, help="seconds Key Vault is down")
    parser.add_argument("--after", type=float, default=8.0, help="seconds measured after")
    parser.add_argument("--kv-latency", type=float, default=0.6, help="each failing answer")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: does it run?")
    args = parser.parse_args(argv)
    if args.smoke:
        args.workers, args.outage, args.after = 3, 2.0, 6.0
    with DevStack() as stack:
        os.environ.update(stack.settings())
        figures = run(stack, args.workers, args.outage, args.after, args.kv_latency)
    print(
        f"Key Vault down for {args.outage:g} s during a rotation, {args.workers} workers, "
        f"each failing Key Vault answer after {args.kv_latency:g} s\n"
    )
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
