"""``python -m secureroute``: the one program (``secureroute.program``)."""

from secureroute.program import main

if __name__ == "__main__":
    main()
