"""``python -m klingwatch``: the console script, for when it is not on PATH."""

from klingwatch.cli import main

if __name__ == "__main__":
    main()
