"""``python -m codesign.simulate.build [build | clean]``: the simulator's compiled build
(``native``). A module of its own because the package imports ``native`` at start-up,
and running an already-imported module with ``-m`` makes runpy warn."""

from codesign.simulate.native import main

if __name__ == "__main__":
    raise SystemExit(main())
