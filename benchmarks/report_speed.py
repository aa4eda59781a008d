"""Time what `convlens train` does after its last epoch: the report and its figures.

`convlens train` ends by calling ``report.write_run_report(directory, test,
fit.test)``: it loads the run, draws every figure (training curves, per-class
accuracy, confusion matrix, journey, feature maps, filters, the mistakes
gallery and their Grad-CAM maps), writes figures/*.png and report.html. The
evaluation is passed in (training has just made it), so it is not redone.

Each repeat runs in a fresh process, as the command does: the package is
imported and the test split loaded first (as `convlens train` has by then),
then the clock runs around the first ``write_run_report`` of that process
(the time a user waits; it includes whatever is imported or warmed up on
first use), then around a second one (warm). After that, each figure is timed
by stage: build (the numbers and the Figure: forward passes, Grad-CAM,
matplotlib artists), draw (Agg rendering), encode (PNG), and the page's HTML.

    flock /tmp/convlens-bench.lock python benchmarks/report_speed.py --run /tmp/why-run

It also times another checkout of the package (PYTHONPATH=<checkout>/src) with
the same layout (convlens.views.report), so before and after run side by side.

The run directory is copied to a temporary folder, never written. Prints
seconds against the 2 s goal (issue 15), medians over --repeats processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GOAL_S = 2.0


def _timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def _figure_makers(run, test, evaluation) -> dict[str, Callable[[], object]]:
    """The report's figures by file stem, each as a function drawing it (as run_figures does)."""
    from convlens.inspect import journey
    from convlens.runs.directory import read_history, run_name
    from convlens.views import plots, run_figures

    options = run_figures.ReportOptions()
    names = run.class_names
    history = read_history(run.path)
    indices = journey.choose_images(test.labels, names, None, options.images, (), fewer_ok=True)
    return {
        "curves": lambda: plots.training_curves_figure(
            history,
            title=f"Training curves of {run_name(run.path)}",
            note=run_figures._loss_note(run),
        ),
        "per_class": lambda: plots.per_class_figure(
            evaluation.per_class_accuracy, names, overall=evaluation.accuracy, title="per class"
        ),
        "confusion": lambda: plots.confusion_figure(evaluation.confusion, names, title="confusion"),
        "journey": lambda: run_figures.journey_figure(run, test, indices),
        "feature_maps": lambda: run_figures.feature_maps_figure(run, test, int(indices[0])),
        "filters": lambda: run_figures.filters_figure(run),
        "misclassified": lambda: run_figures.misclassified_figure(run, test, evaluation),
        "mistakes_why": lambda: run_figures.mistakes_why_figure(run, test, evaluation),
    }


def _stages(run, test, evaluation) -> dict[str, dict[str, float]]:
    """Seconds of build, draw and encode for each figure (warm), and of the HTML.

    draw: Agg rendering to pixels, encode: those pixels to PNG, the two steps
    of run_figures.figure_png.
    """
    from convlens.views import report, run_figures

    found: dict[str, dict[str, float]] = {}
    pngs = {}
    for name, make in _figure_makers(run, test, evaluation).items():
        figure, build = _timed(make)
        pixels, draw = _timed(lambda figure=figure: run_figures.figure_pixels(figure))
        dpi = figure.dpi
        pngs[name], encode = _timed(lambda pixels=pixels, dpi=dpi: run_figures.png_of(pixels, dpi))
        found[name] = {"build": build, "draw": draw, "encode": encode}
    _, html = _timed(lambda: report.report_html(run, evaluation, pngs))
    found["report.html"] = {"build": html, "draw": 0.0, "encode": 0.0}
    return found


def child(run_dir: str) -> None:
    """One process: import, load, then time write_run_report cold and warm, then stages."""
    from convlens.runs import loading
    from convlens.runs.evaluate import evaluate
    from convlens.runs.loading import load_run
    from convlens.views import report

    work = Path(tempfile.mkdtemp(prefix="report-speed-"))
    try:
        copy = work / "run"
        shutil.copytree(run_dir, copy)
        run = load_run(copy)
        test = loading.load_test_split(run)
        shape, classes = run.model.input_shape, run.model.num_classes
        evaluation, evaluate_s = _timed(lambda: evaluate(run.network, test, shape, classes))
        _, cold = _timed(lambda: report.write_run_report(copy, test, evaluation))
        _, warm = _timed(lambda: report.write_run_report(copy, test, evaluation))
        stages = _stages(load_run(copy), test, evaluation)
        figures = sorted(p.name for p in (copy / report.FIGURES_DIR).glob("*.png"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                "cold": cold,
                "warm": warm,
                "evaluate": evaluate_s,
                "stages": stages,
                "figures": figures,
            }
        )
    )


def _table(results: list[dict]) -> str:
    names = list(results[0]["stages"])
    lines = [
        f"{'figure':<18}{'build s':>9}{'draw s':>9}{'encode s':>10}{'total s':>9}",
    ]
    totals = {"build": 0.0, "draw": 0.0, "encode": 0.0}
    for name in names:
        row = {
            key: statistics.median(r["stages"][name][key] for r in results)
            for key in ("build", "draw", "encode")
        }
        for key in totals:
            totals[key] += row[key]
        lines.append(
            f"{name:<18}{row['build']:>9.3f}{row['draw']:>9.3f}{row['encode']:>10.3f}"
            f"{sum(row.values()):>9.3f}"
        )
    lines.append(
        f"{'sum':<18}{totals['build']:>9.3f}{totals['draw']:>9.3f}{totals['encode']:>10.3f}"
        f"{sum(totals.values()):>9.3f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="/tmp/why-run", help="a trained run directory")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes to time")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.run)
        return
    results = []
    for _ in range(args.repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--run", args.run],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    colds = [r["cold"] for r in results]
    cold = statistics.median(colds)
    warm = statistics.median(r["warm"] for r in results)
    evaluate_s = statistics.median(r["evaluate"] for r in results)
    print(f"run: {args.run}; figures written: {', '.join(results[0]['figures'])}")
    print(
        f"write_run_report, first call in a process (what `convlens train` waits): "
        f"{cold:.2f} s, median of {len(results)} ({', '.join(f'{c:.2f}' for c in colds)})"
    )
    print(f"write_run_report, second call (warm): {warm:.2f} s")
    print(f"goal: {GOAL_S:.1f} s; first call / goal = {cold / GOAL_S:.2f}")
    print(f"(the test evaluation train passes in, if it were redone: {evaluate_s:.2f} s)")
    print("\nstages, warm, median seconds:")
    print(_table(results))


if __name__ == "__main__":
    main()
