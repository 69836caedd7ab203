"""`python -m pyconvx bench` runs the `pyconvx` command (see pyconvx.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
