"""`python -m data_prep {synth,splits,paste_back} ...`: the data_prep command-line tools."""
import sys

USAGE = """usage: python -m data_prep COMMAND [options]

commands:
  synth        generate the synthetic benchmark      (python -m data_prep.synth --help)
  splits       build the COCO 2014 split manifests   (python -m data_prep.coco_splits --help)
  paste_back   build the paste-back evaluation set   (python -m data_prep.paste_back --help)
"""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "synth":
        from data_prep.synth import main as run
    elif command in ("splits", "coco_splits"):
        from data_prep.coco_splits import main as run
    elif command in ("paste_back", "paste-back"):
        from data_prep.paste_back import main as run
    else:
        print(f"error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    raise SystemExit(main())
