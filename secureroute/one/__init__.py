"""The one program: gRPC and HTTP from one process and one event loop, wired above both programs.

``service`` and ``http_facade`` never import each other; this package imports both (the import
contracts in pyproject.toml allow it here and nowhere else in ``secureroute``).
"""
