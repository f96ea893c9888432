"""Offline stand-ins for Entra ID, Key Vault, managed identity and a Graph-like API.

Local runs and tests only: excluded from deployment by ``.funcignore``. Nothing here is
imported by ``obo/`` or ``function_app.py``.
"""
