"""Faithfulness and speed of the attribution maps on the real Fashion-MNIST test set.

For each method (convlens.inspect.methods.METHODS) and each of the first --images
test images, the 10% most attributed pixels toward the predicted class are
deleted (set to 0, the datasets' black background), and so are 10% of the
pixels chosen at random (the reference: a map no better than chance). A
faithful map makes the predicted class's probability drop more than the
random deletion does. Printed per method: the mean drop of each, their ratio,
the share of images where the map's deletion drops more, and the time per
image (maps computed in batches of 100, as the report and the CLI do). For
integrated gradients, the completeness error |delta| relative to
|score(x) - score(black)| is printed too.

Then the explorer: one image's map over real HTTP (POST /api/attribution,
median of --repeat requests after two warm-ups, each asking for another
class so nothing is cached) and, with --page, in Chromium: from a change of
the page's class selector to the overlay drawn (#why-overlay's data-ms).
Target: under 300 ms. Run it alone:

    flock /tmp/convlens-bench.lock python benchmarks/attribution.py --run /tmp/why-run --page

(train the run once with `convlens train --out /tmp/why-run --quiet`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from convlens.inspect import attribution, methods
from convlens.inspect import faithfulness as faithfulness_test
from convlens.runs import loading
from convlens.runs.loading import load_run


def faithfulness(run, images: np.ndarray, method: str, fraction: float, seed: int) -> dict:
    """Mean probability drops (map vs random deletion), time per image, IG's error.

    The deletion test is convlens.inspect.faithfulness's, the one that picks a run's
    default method; only the timing is this benchmark's own.
    """
    started = time.perf_counter()
    found = faithfulness_test.explain_in_batches(run, images, method)
    seconds = (time.perf_counter() - started) / len(images)
    maps = np.concatenate([f.maps for f in found])
    predicted = np.concatenate([f.targets for f in found])
    by_map, by_chance = faithfulness_test.deletion_drops(
        run, images, maps, predicted, fraction, seed
    )
    result = {
        "method": method,
        "map_drop": float(by_map.mean()),
        "random_drop": float(by_chance.mean()),
        "wins": float((by_map > by_chance).mean()),
        "ms_per_image": seconds * 1000,
    }
    if method == "integrated-gradients":
        result["ig_error"] = ig_relative_error(run, images, found, predicted)
    return result


def ig_relative_error(run, images, found, predicted) -> float:
    """Median |delta| / |score(x) - score(black)| over the images."""
    delta = np.abs(np.concatenate([f.delta for f in found]))
    with torch.inference_mode():
        scores = run.network(attribution.model_tensor(run.model, images)).double().numpy()
        black = run.network(attribution.model_tensor(run.model, np.zeros_like(images[:1])))
    rows = np.arange(len(images))
    difference = np.abs(scores[rows, predicted] - black.double().numpy()[0, predicted])
    return float(np.median(delta / np.maximum(difference, 1e-9)))


def http_times(run_dir: Path, repeat: int) -> dict[str, float]:
    """Median ms of POST /api/attribution for one test image, per method, over HTTP."""
    from convlens.web.app import create_app
    from convlens.web.server import serve_in_thread

    url, stop = serve_in_thread(create_app(runs_root=Path("/nonexistent"), run=run_dir))
    try:
        parsed = urlparse(url)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port)
        name = run_dir.name

        def call(method: str, path: str, body: dict | None = None) -> dict:
            data = None if body is None else json.dumps(body)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=data, headers=headers)
            answer = connection.getresponse()
            text = answer.read()
            assert answer.status == 200, text
            return json.loads(text)

        image = call("GET", f"/api/samples?class_choice=5&count=1&run={name}")["images"][0]["id"]
        times = {}
        for method in methods.METHODS:
            found = []
            for k in range(repeat + 2):
                request = {"run": name, "image": image, "method": method, "target": k % 10}
                started = time.perf_counter()
                call("POST", "/api/attribution", request)
                found.append((time.perf_counter() - started) * 1000)
            times[method] = statistics.median(found[2:])
        return times
    finally:
        stop()


def page_times(run_dir: Path, repeat: int) -> dict[str, float]:
    """Median ms in Chromium from a class change to the overlay drawn, per method."""
    from playwright.sync_api import sync_playwright

    from convlens.web.app import create_app
    from convlens.web.server import serve_in_thread

    url, stop = serve_in_thread(create_app(runs_root=Path("/nonexistent"), run=run_dir))
    times = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-ready='true']")
            page.click("label[for=source-sample]")
            page.locator("#sample-thumbs .sample-thumb").first.click()
            page.wait_for_function("document.querySelector('#journey').dataset.imageId")
            page.wait_for_timeout(500)
            page.check("#why-toggle")
            page.wait_for_selector("#why-overlay:not([hidden])")
            for method in methods.METHODS:
                page.select_option("#why-method", method)
                found = []
                for k in range(repeat + 2):
                    page.select_option("#why-class", str(k % 10))
                    page.wait_for_function(
                        "([m, t]) => { const o = document.querySelector('#why-overlay').dataset;"
                        " return o.method === m && o.target === t; }",
                        arg=[method, str(k % 10)],
                    )
                    found.append(float(page.get_attribute("#why-overlay", "data-ms")))
                times[method] = statistics.median(found[2:])
            browser.close()
    finally:
        stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="/tmp/why-run", help="a trained lesson-CNN run")
    parser.add_argument("--images", type=int, default=1000, help="first N test images")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of pixels deleted")
    parser.add_argument("--seed", type=int, default=0, help="the random deletion's seed")
    parser.add_argument("--repeat", type=int, default=10, help="requests per method timed")
    parser.add_argument("--page", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    run = load_run(args.run)
    test = loading.load_test_split(run)
    images = test.images[: args.images]
    print(
        f"{run.model.name} run {Path(args.run).name}, first {len(images):,} Fashion-MNIST test "
        f"images, deleting {args.fraction:.0%} of pixels (set to 0), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'method':<22}{'drop (map)':>11}{'drop (random)':>14}{'ratio':>7}{'map wins':>10}{'ms/image':>10}"
    )
    for method in methods.METHODS:
        r = faithfulness(run, images, method, args.fraction, args.seed)
        ratio = r["map_drop"] / r["random_drop"] if r["random_drop"] else float("inf")
        print(
            f"{method:<22}{r['map_drop']:>11.3f}{r['random_drop']:>14.3f}{ratio:>7.1f}"
            f"{r['wins']:>10.0%}{r['ms_per_image']:>10.2f}"
        )
        if "ig_error" in r:
            print(
                f"  integrated gradients: median completeness error {r['ig_error']:.2%} of |score(x) - score(black)|"
            )
    chosen = faithfulness_test.default_method(run, test)
    print(f"the run's default (measured on {chosen.images} test images): {chosen.why}")
    run_dir = Path(args.run).resolve()
    http = http_times(run_dir, args.repeat)
    print(
        "explorer, one image's map over HTTP (median ms): "
        + ", ".join(f"{m} {t:.0f}" for m, t in http.items())
    )
    if args.page:
        page = page_times(run_dir, args.repeat)
        print(
            "explorer, in Chromium, class change to overlay drawn (median ms): "
            + ", ".join(f"{m} {t:.0f}" for m, t in page.items())
        )


if __name__ == "__main__":
    main()
