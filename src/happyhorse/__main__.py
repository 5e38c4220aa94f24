"""``python -m happyhorse``: the same CLI as the ``happyhorse`` command."""

from happyhorse.cli import main

if __name__ == "__main__":
    main()
