"""``python -m secureroute``: the one program (``secureroute.one.program``)."""

from secureroute.one.program import main

if __name__ == "__main__":
    main()
