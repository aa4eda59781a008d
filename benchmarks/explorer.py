"""Time the explorer's answers over real HTTP, against its targets and a matplotlib reference.

A real server (uvicorn, in this process's background thread) is asked, over a
kept-alive HTTP connection as a browser would:

- the journey of one 28x28 test image through the lesson's CNN
  (POST /api/journey: every layer's maps as PNG grids, the learned filters,
  the probabilities). Target: under 100 ms.
- the playground's filter result for a 512x512 image (POST /api/convolve: a
  3x3 filter, then 2x2 max pooling, both as PNGs). Each request uses a new
  random kernel, so nothing is served from the server's cache. Target: under 50 ms.
- one hovered pixel's arithmetic (POST /api/explain).

The reference is what the command line does for the same pictures:
matplotlib figures of every map of a layer (`convlens inspect --layer`) and
of the filtered and pooled images (`convlens convolve`), saved as PNG. Times
are medians of --repeat requests after two warm-up requests. Run it alone:

    flock /tmp/convlens-bench.lock python benchmarks/explorer.py [--run runs/NAME]

With --during-job the same requests are timed while a training job (the
lesson's CNN, one epoch on the first --train-images real Fashion-MNIST
images) runs in its own process (target: every answer under 250 ms), and
the job's time is compared with `convlens train` at the same thread count
and with the same job followed by a page (its Server-Sent Events read):

    flock /tmp/convlens-bench.lock python benchmarks/explorer.py --during-job

Without --run an untrained seed-cnn run is written to a temporary folder
(the time does not depend on the weights).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from convlens.data import datasets
from convlens.data.datasets import Split
from convlens.lab import ops
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.model.weights import save_model
from convlens.runs.directory import write_metrics
from convlens.runs.loading import load_run
from convlens.views import plots, run_figures
from convlens.web.app import create_app
from convlens.web.server import serve_in_thread

JOURNEY_TARGET_MS = 100
FILTER_TARGET_MS = 50
DURING_JOB_TARGET_MS = 250  # the playground and journey while a job trains (issue 14)


class Client:
    """JSON over one kept-alive HTTP connection."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None, kind: str = "json"):
        headers = {"Content-Type": f"application/{kind}"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        answer = self.connection.getresponse()
        data = answer.read()
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:300]!r}")
        return json.loads(data), len(data)


def median_ms(action: Callable[[int], object], repeat: int) -> float:
    """Median milliseconds of ``action(i)`` over ``repeat`` calls, after two warm-ups."""
    action(-1)
    action(-2)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def lesson_run(folder: Path) -> Path:
    """An untrained run of the lesson's CNN, laid out as `convlens train` writes it."""
    model = preset("seed-cnn")
    run = folder / "seed-cnn"
    run.mkdir()
    save_model(run, model, build_network(model, seed=0))
    write_metrics(run, {"model": model.name, "dataset": "fashion-mnist", "test_accuracy": None})
    return run


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def matplotlib_journey(run_dir: Path, image: np.ndarray) -> Callable[[int], object]:
    """The command line's route: every map of each conv and pooling layer as a figure PNG."""
    run = load_run(run_dir)
    test = Split(image[None], np.zeros(1, dtype=np.int64))

    def draw(_i: int) -> None:
        for layer in ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"):
            run_figures.figure_png(run_figures.feature_maps_figure(run, test, 0, layer))

    return draw


def matplotlib_filter(image: np.ndarray, rng: np.random.Generator) -> Callable[[int], object]:
    """The command line's route: `convlens convolve`'s figure of one filter, as PNG."""

    def draw(_i: int) -> None:
        kernel = rng.normal(size=(3, 3))
        filtered = ops.conv2d(image, kernel)
        pooled = ops.pool2d(filtered, 2)
        figure = plots.convolution_figure(
            image, kernel, filtered, pooled, title="benchmark", pool_label="max pooled 2x2"
        )
        run_figures.figure_png(figure)

    return draw


def real_subset(folder: Path, train: int, test: int) -> Path:
    """The first ``train``/``test`` real Fashion-MNIST images as IDX files (CONVLENS_DATA)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic import write_idx_dataset

    full = datasets.load("fashion-mnist")
    subset = replace(
        full,
        train=Split(full.train.images[:train], full.train.labels[:train]),
        test=Split(full.test.images[:test], full.test.labels[:test]),
    )
    write_idx_dataset(folder / "fashion-mnist", subset)
    return folder


def follow_job(url: str, job: str) -> int:
    """Read a job's Server-Sent Events to the end, as a watching page does; returns their count."""
    count = 0
    with urllib.request.urlopen(f"{url}api/jobs/{job}/events", timeout=3600) as stream:
        for line in stream:
            count += line.startswith(b"event: ")
    return count


def job_seconds(client: Client, runs: Path, body: dict, watch_url: str | None) -> tuple[float, str]:
    """Run one job to its end (with a page following its events when ``watch_url``)."""
    job_id = client.call("POST", "/api/jobs", json.dumps(body).encode())[0]["id"]
    if watch_url is not None:
        follow_job(watch_url, job_id)
        client = Client(watch_url)  # the kept-alive connection has timed out meanwhile
    while (status := client.call("GET", f"/api/jobs/{job_id}")[0])["state"] not in (
        "done",
        "failed",
        "cancelled",
    ):
        time.sleep(0.5)
    if status["state"] != "done":
        raise RuntimeError(f"the job ended {status['state']}: {status['error']}")
    metrics = json.loads((runs / status["run"] / "metrics.json").read_text())
    return metrics["seconds"], status["run"]


def during_job(args: argparse.Namespace) -> None:
    """Answer times while a job trains, and what a watching page costs the job."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["CONVLENS_DATA"] = str(real_subset(root / "data", args.train_images, 2000))
        run_dir = lesson_run(root)
        runs = root / "runs"
        app = create_app(runs, run_dir)
        url, stop = serve_in_thread(app)
        try:
            client = Client(url)
            digit = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            big = rng.integers(0, 256, (512, 512), dtype=np.uint8)
            small_id = client.call("POST", "/api/images", png_bytes(digit), "octet-stream")[0]["id"]
            big_id = client.call("POST", "/api/images", png_bytes(big), "octet-stream")[0]["id"]
            journey_body = json.dumps({"run": run_dir.name, "image": small_id}).encode()

            def journey(_i: int) -> None:
                client.call("POST", "/api/journey", journey_body)

            def convolve(_i: int) -> None:
                kernel = rng.normal(size=9).round(3).tolist()
                body = json.dumps({"image": big_id, "kernel": kernel, "pool": "max"})
                client.call("POST", "/api/convolve", body.encode())

            idle = {
                name: median_ms(action, args.repeat)
                for name, action in (("journey", journey), ("convolve", convolve))
            }
            body = {"model": "seed-cnn", "dataset": "fashion-mnist", "epochs": 1, "seed": 0}
            started = client.call("POST", "/api/jobs", json.dumps(body).encode())[0]["id"]
            while client.call("GET", f"/api/jobs/{started}")[0]["state"] != "running":
                time.sleep(0.2)
            time.sleep(3)  # past loading: the job is training
            busy = {}
            for name, action in (("journey", journey), ("convolve", convolve)):
                times = []
                for i in range(args.repeat):
                    begin = time.perf_counter()
                    action(i)
                    times.append((time.perf_counter() - begin) * 1000)
                busy[name] = (statistics.median(times), max(times))
            state = client.call("GET", f"/api/jobs/{started}")[0]["state"]
            threads = client.call("GET", "/api/jobs")[0]["threads"]
            print(
                f"explorer over HTTP at {url}; a job trains seed-cnn on {args.train_images:,} "
                f"real Fashion-MNIST images with {threads} torch thread(s) of {os.cpu_count()} "
                f"cores; {args.repeat} requests each"
            )
            for name in idle:
                median, worst = busy[name]
                verdict = "met" if worst < DURING_JOB_TARGET_MS else "NOT met"
                print(
                    f"{name}: {idle[name]:.1f} ms idle, {median:.1f} ms median and "
                    f"{worst:.1f} ms worst during the job (target {DURING_JOB_TARGET_MS} ms: "
                    f"{verdict}); job still {state} after the requests"
                )
            while client.call("GET", f"/api/jobs/{started}")[0]["state"] == "running":
                time.sleep(0.5)
            # What a watching page costs: the same job, followed and not, against the CLI,
            # interleaved and repeated (medians), so that the machine's noise hits all three.
            times: dict[str, list[float]] = {"unwatched": [], "watched": [], "cli": []}
            for repeat in range(args.job_repeat):
                client = Client(url)  # a kept-alive connection idle for seconds is closed
                times["unwatched"].append(job_seconds(client, runs, body, None)[0])
                times["watched"].append(job_seconds(Client(url), runs, body, url)[0])
                cli_run = root / f"cli-run-{repeat}"
                command = [sys.executable, "-m", "convlens", "train", "--model", "seed-cnn"]
                command += ["--dataset", "fashion-mnist", "--epochs", "1", "--seed", "0"]
                command += ["--threads", str(threads), "--quiet", "--out", str(cli_run)]
                subprocess.run(
                    command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                times["cli"].append(json.loads((cli_run / "metrics.json").read_text())["seconds"])
            print("seconds of each try:", {k: [round(t, 1) for t in v] for k, v in times.items()})
            unwatched, watched, cli = (statistics.median(times[k]) for k in times)
            print(
                f"one epoch of seed-cnn on {args.train_images:,} images: `convlens train "
                f"--threads {threads}` {cli:.1f} s; a job nobody watches {unwatched:.1f} s "
                f"({unwatched / cli:.2f}x); a job a page follows {watched:.1f} s "
                f"({watched / unwatched:.2f}x the unwatched job)"
            )
        finally:
            app.state.jobs.shutdown()
            stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run of the lesson's CNN (default: untrained)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--during-job",
        action="store_true",
        help="time the answers while a training job runs, and the cost of a watching page",
    )
    parser.add_argument("--train-images", type=int, default=12000, help="with --during-job")
    parser.add_argument("--job-repeat", type=int, default=3, help="with --during-job")
    args = parser.parse_args()
    if args.during_job:
        during_job(args)
        return
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or lesson_run(Path(folder))
        url, stop = serve_in_thread(create_app(run_dir.parent, run_dir))
        try:
            client = Client(url)
            digit = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            big = rng.integers(0, 256, (512, 512), dtype=np.uint8)
            small_id = client.call("POST", "/api/images", png_bytes(digit), "octet-stream")[0]["id"]
            big_id = client.call("POST", "/api/images", png_bytes(big), "octet-stream")[0]["id"]
            journey_body = json.dumps({"run": run_dir.name, "image": small_id}).encode()
            sizes = {}

            def journey(_i: int) -> None:
                sizes["journey"] = client.call("POST", "/api/journey", journey_body)[1]

            def convolve(_i: int) -> None:
                kernel = rng.normal(size=9).round(3).tolist()
                body = json.dumps({"image": big_id, "kernel": kernel, "pool": "max"})
                sizes["convolve"] = client.call("POST", "/api/convolve", body.encode())[1]

            def explain(i: int) -> None:
                body = {"image": big_id, "filter": "vertical", "row": i % 510, "col": 7}
                client.call("POST", "/api/explain", json.dumps(body).encode())

            results = [
                (
                    "journey, lesson's CNN, one 28x28 image",
                    journey,
                    JOURNEY_TARGET_MS,
                    matplotlib_journey(run_dir, digit[:, :, None]),
                ),
                (
                    "filter + 2x2 max pool, 512x512 image",
                    convolve,
                    FILTER_TARGET_MS,
                    matplotlib_filter(big, rng),
                ),
                ("hovered pixel's arithmetic, 512x512 image", explain, None, None),
            ]
            print(f"explorer over HTTP at {url}; medians of {args.repeat} requests")
            ours = [median_ms(action, args.repeat) for _, action, _, _ in results]
            for (title, _, target, reference), ms in zip(results, ours, strict=True):
                line = f"{title}: {ms:.1f} ms"
                if target:
                    line += f" (target {target} ms: {'met' if ms < target else 'NOT met'})"
                if reference is not None:  # after ours: the slow figures outlast the keep-alive
                    theirs = median_ms(reference, 3)
                    line += f"; matplotlib figures of the same {theirs:.0f} ms ({theirs / ms:.0f}x)"
                print(line, flush=True)
            print(
                f"answer sizes: journey {sizes['journey'] / 1024:.0f} KB, "
                f"convolve {sizes['convolve'] / 1024:.0f} KB"
            )
        finally:
            stop()


if __name__ == "__main__":
    main()
