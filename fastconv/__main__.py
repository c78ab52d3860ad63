"""Command line: ``python -m fastconv {demo,info,bench,calibrate}``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="walk through convolution vs cross-correlation, then time fastconv")
    sub.add_parser("info", help="print versions, CPU, threads, threading layer and kernel cache")
    sub.add_parser("bench", help="time fastconv against the installed alternatives (--help for options)",
                   add_help=False)
    sub.add_parser("calibrate", help="measure the cost model of method='auto' on this machine and save it")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from ._bench import main as bench

        return bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        from ._demo import main as demo

        return demo()
    if args.command == "calibrate":
        from ._auto import cache_file, calibrate

        calibrate()
        print(f"saved to {cache_file()}")
        return 0
    if args.command == "info":
        from ._config import info

        for key, value in info().items():
            print(f"{key:>16}: {value}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
