"""`python -m tfbench` is the `tfbench` command."""

from tfbench.cli import main

if __name__ == "__main__":
    main()
