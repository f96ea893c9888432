"""On-Behalf-Of middle tier for Microsoft Entra ID: validate the caller, exchange, call on.

The public API is what ``__all__`` names (docs/adopting.md walks through it); every other
module and name is private and may change. Importable without the Functions host.
"""

from obo.clients import AsyncDownstreamApi, AsyncDownstreamApis, DownstreamApi, DownstreamApis
from obo.errors import DownstreamError, OboError
from obo.functions import OnBehalfOf
from obo.responses import Result
from obo.validation import Caller

__all__ = [
    "AsyncDownstreamApi",
    "AsyncDownstreamApis",
    "Caller",
    "DownstreamApi",
    "DownstreamApis",
    "DownstreamError",
    "OboError",
    "OnBehalfOf",
    "Result",
]
