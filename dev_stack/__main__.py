"""``python -m dev_stack``: see ``dev_stack.cli``.

Usage:
    python -m dev_stack --help
"""

from dev_stack.cli import main

raise SystemExit(main())
