"""`python3 -m evserver hash-password`: a line for --auth-file, typed at a terminal.

Owns: `main()`. Imports `auth` (the hash format the server verifies). Never runs while
serving.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from ..auth import SCHEMES, hash_password


def main(argv: list[str]) -> int:
    """`python3 -m evserver hash-password`: print a hash for an auth file line."""
    parser = argparse.ArgumentParser(prog="evserver hash-password",
                                     description="Print a password hash for an --auth-file.")
    parser.add_argument("--scheme", choices=SCHEMES, default="scrypt")
    parser.add_argument("--stdin", action="store_true",
                        help="read the password once, from the first line of standard input")
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        print("hash-password: standard input is not a terminal; use --stdin", file=sys.stderr)
        return 2
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("hash-password: the passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("hash-password: empty password", file=sys.stderr)
        return 1
    print(hash_password(password, scheme=args.scheme))
    return 0
