"""Command line: ``python -m fastconv {demo,bench,info}``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="walk through convolution vs cross-correlation, then time fastconv")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    return 2


if __name__ == "__main__":
    sys.exit(main())
