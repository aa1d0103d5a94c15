"""`python -m edgekit` and the `edgekit` console script.

Ctrl-C is deferred before the CLI's modules load, so one that lands while they load exits 130
like any other (edgekit.interrupts)."""

from edgekit import interrupts

interrupts.defer()


def run() -> None:
    from edgekit.cli import main

    main()


if __name__ == "__main__":
    run()
