"""python -m fastnn.studies NAME|all [--out DIR] [--quick] [--seed N] [--threads N]"""

import argparse
import sys

from fastnn.studies import STUDIES, run


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastnn.studies",
        description="Run a study: train networks, write NAME.png, NAME.json and NAME.csv "
                    "into --out, and print a summary. Studies: %s." % ", ".join(STUDIES))
    parser.add_argument("name", choices=list(STUDIES) + ["all"], metavar="NAME",
                        help="a study (%s) or 'all'" % ", ".join(STUDIES))
    parser.add_argument("--out", default="studies_out",
                        help="output directory (default: studies_out)")
    parser.add_argument("--quick", action="store_true",
                        help="a small, fast version (used by the tests)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for data, initial weights and batch order (default: 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="fastnn threads (default: 1; the networks are small)")
    args = parser.parse_args(argv)
    names = list(STUDIES) if args.name == "all" else [args.name]
    for name in names:
        result = run(name, out=args.out, quick=args.quick, seed=args.seed,
                     n_threads=args.threads)
        print("%s (%.1f s): %s" % (name, result["seconds"], ", ".join(
            result["files"][k] for k in ("png", "json", "csv"))))
        print(result["summary"])
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
