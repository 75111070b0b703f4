"""Commands still to come; registered so that adding them touches only this file."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's subcommands (none yet)."""
