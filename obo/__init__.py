"""On-Behalf-Of middle tier for Microsoft Entra ID: validate the caller, exchange, call on.

Importable without the Functions host; ``function_app.py`` only adapts HTTP to
:class:`obo.service.OboService`.
"""
