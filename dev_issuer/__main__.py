"""``python -m dev_issuer``: see ``dev_issuer.cli``.

Usage:
    python -m dev_issuer --help
"""

from dev_issuer.cli import main

raise SystemExit(main())
