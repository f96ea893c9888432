"""Graph-like downstream API stand-in (placeholder: being written)."""

from __future__ import annotations

from devstack.directory import Directory
from devstack.httpserver import Service


class GraphApi(Service):
    name = "graph"

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
