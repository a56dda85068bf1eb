"""secureroute: the one program (``python -m secureroute``, gRPC and HTTP from one process behind one
guard), above the two programs it composes (``service``, ``http_facade``); ``secureroute.v1`` is the
code generated from ``protos/``.

Usage:
    python -m secureroute --issuer https://idp.example.com/ --audiences secureroute
"""
