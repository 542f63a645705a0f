"""eqbench zoo: the CPU model zoo's models, their checksums, and (for maintainers) adding runs and cards."""

from __future__ import annotations

import argparse

from ..errors import EqbenchError

NAME = "zoo"
HELP = "list and verify the CPU model zoo (maintainers: add runs, write model cards)"
EXAMPLES = """examples:
  eqbench zoo                       # list the models and verify their checksums
  eqbench zoo add runs/zoo/liif --train-command "OMP_NUM_THREADS=1 eqbench train --method liif ..." --wall-seconds 900
  eqbench zoo cards --baseline reports/baseline.json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list", choices=["list", "add", "cards"])
    p.add_argument("run", nargs="?", help="add: an `eqbench train` output folder")
    p.add_argument("--train-command", help="add: the exact training command, for the model card")
    p.add_argument("--wall-seconds", type=float, help="add: the run's wall time (all stages)")
    p.add_argument("--stage1", help="add: the run this one was initialised from (--init), for a two-stage model")
    p.add_argument("--baseline", help="cards: the results.json the scores come from")


def run(a: argparse.Namespace) -> int:
    from ..zoo import verify, zoo_entries

    if a.action == "add":
        from ..zoo.build import add_run

        if not a.run or not a.train_command:
            raise EqbenchError("eqbench zoo add needs RUN_DIR and --train-command")
        e = add_run(a.run, command=a.train_command, wall_seconds=a.wall_seconds, stage1=a.stage1)
        print(f"added {e['file']} ({e['sha256'][:12]})")
        return 0
    if a.action == "cards":
        from ..zoo.build import write_cards

        if not a.baseline:
            raise EqbenchError("eqbench zoo cards needs --baseline RESULTS.json")
        print(write_cards(a.baseline), end="")
        return 0
    entries = zoo_entries()
    if not entries:
        print("the zoo is empty")
        return 0
    bad = 0
    for m, e in entries.items():
        try:
            verify(e)
            status = "ok"
        except EqbenchError as err:
            status, bad = f"BAD: {err}", bad + 1
        print(f"{m:>10}  {e.size:<5} {e.file:<40} {status}")
    return 1 if bad else 0
