"""The `slob` subcommands, one module each.

Every module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args, out) -> int`` (the exit code). :mod:`slob.cli` lists them in ``COMMANDS``.
Shared argument types live in :mod:`slob.commands.common`.
"""
