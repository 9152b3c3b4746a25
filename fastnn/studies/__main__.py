"""python -m fastnn.studies NAME|all [--out DIR] [--quick] [--seed N] [--threads N]"""

import argparse
import sys

from fastnn.studies import STUDIES, run, search_strategies

# Run like a study but left out of "all": they measure the library itself
# rather than illustrate a lesson of the specification.
COMMANDS = {"search_strategies": search_strategies}


def main(argv=None):
    names = list(STUDIES) + list(COMMANDS)
    parser = argparse.ArgumentParser(
        prog="python -m fastnn.studies",
        description="Run a study: train networks, write NAME.png, NAME.json and NAME.csv "
                    "into --out, and print a summary. Studies: %s. Also search_strategies: "
                    "grid, random and LIPO search compared (the table in docs/search.md; "
                    "not part of 'all')." % ", ".join(STUDIES))
    parser.add_argument("name", choices=names + ["all"], metavar="NAME",
                        help="a study (%s) or 'all'" % ", ".join(names))
    parser.add_argument("--out", default="studies_out",
                        help="output directory (default: studies_out)")
    parser.add_argument("--quick", action="store_true",
                        help="a small, fast version (used by the tests)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for data, initial weights and batch order (default: 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="fastnn threads (default: 1; the networks are small)")
    args = parser.parse_args(argv)
    for name in list(STUDIES) if args.name == "all" else [args.name]:
        options = dict(out=args.out, quick=args.quick, seed=args.seed, n_threads=args.threads)
        result = COMMANDS[name].run(**options) if name in COMMANDS else run(name, **options)
        print("%s (%.1f s): %s" % (name, result["seconds"], ", ".join(
            result["files"][k] for k in ("png", "json", "csv"))))
        print(result["summary"])
        if "table" in result:
            print()
            print(result["table"])
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
