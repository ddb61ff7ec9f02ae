"""Draw bench_tap.py's medians as a PNG: throughput and RTT per path, side by side.

    .venv/bin/python benchmarks/chart_paths.py RESULTS.json [OUT.png]

RESULTS.json is what ``bench_tap.py --json`` writes; OUT.png defaults to
docs/bench/paths.png, the chart the README shows.  Needs matplotlib (the
``bench`` extra: ``pip install ".[bench]"``).
"""
import json
import pathlib
import sys

DEFAULT_OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "bench" / "paths.png"
COLOURS = {"veth": "#9e9e9e", "relay": "#5b8fd9", "relay-vnet": "#2c5aa0",
           "ndisproxy": "#e07b39"}


def draw(results, out):
    import matplotlib
    matplotlib.use("Agg")           # no screen here
    from matplotlib import pyplot

    paths = list(results["paths"])
    gbits = [results["paths"][p]["gbits"] for p in paths]
    rtts = [results["paths"][p]["rtt_ms"] for p in paths]
    colours = [COLOURS.get(p.split("+")[0], "#e07b39") for p in paths]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    for axes, values, label, fmt in ((left, gbits, "TCP throughput, Gbit/s", "{:.2f}"),
                                     (right, rtts, "ping RTT, ms (lower is better)", "{:.3f}")):
        bars = axes.bar(paths, values, color=colours)
        axes.set_title(label)
        axes.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2)
        axes.tick_params(axis="x", rotation=20)
        axes.margins(y=0.15)
    figure.suptitle(f"bench_tap.py, median of {results['runs']} x {results['seconds']} s - "
                    f"{results['date']}, {results['machine']}", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)


def main(argv):
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    results = json.loads(pathlib.Path(argv[0]).read_text())
    out = pathlib.Path(argv[1]) if len(argv) == 2 else DEFAULT_OUT
    draw(results, out)
    print(f"{out}: {', '.join(results['paths'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
