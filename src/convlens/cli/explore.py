"""Subcommand ``explore``: the local web explorer (see convlens.web)."""

from __future__ import annotations

import argparse
from pathlib import Path

from convlens.cli.base import command
from convlens.runs.directory import RUNS_ROOT


@command
def _register_explore(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "explore",
        help="open the explorer: a local page to play with convolution and walk images "
        "through your trained model",
        description="Start a local web server and open its page: a convolution and pooling "
        "playground (built-in, test-set, uploaded or drawn images; any 3x3 filter; every "
        "pixel's arithmetic on hover), the journey of an image through a run's model, and "
        "test images of one class through one filter, a model editor, training in the page "
        "(watch the filters learn) and runs compared side by side. Listens on 127.0.0.1 only "
        "unless --host is given; then the address printed carries a token that other "
        "computers need.",
    )
    parser.add_argument("--run", type=Path, help="a run directory to show first")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=RUNS_ROOT,
        help=f"where the runs to choose from are (default: {RUNS_ROOT}/)",
    )
    parser.add_argument(
        "--dataset",
        help="a folder of images (one subfolder per class) that training from the page may "
        "use, besides fashion-mnist and mnist",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only; another address "
        "asks for the token printed with the page's address)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address without opening a browser"
    )
    parser.set_defaults(func=_explore)


def _explore(args: argparse.Namespace) -> int:
    from convlens.errors import ConvlensError
    from convlens.runs.directory import resolve_run
    from convlens.web.app import create_app
    from convlens.web.doors import is_loopback, new_token, who_can_reach
    from convlens.web.server import serve

    if not 0 <= args.port <= 65535:
        raise ConvlensError(f"--port must be 0..65535 (0 for a free one), not {args.port}.")
    run = None if args.run is None else resolve_run(args.run)
    named = ("fashion-mnist", "mnist")
    if (
        args.dataset is not None
        and args.dataset.lower() not in named
        and not Path(args.dataset).is_dir()
    ):
        raise ConvlensError(
            f"--dataset {args.dataset} is not a folder; give a folder of images with one "
            "subfolder per class (fashion-mnist and mnist are always offered)."
        )
    token = None if is_loopback(args.host) else new_token()  # others need it, as Jupyter's
    app = create_app(args.runs_dir, run, args.host, args.dataset, token=token)

    def announce(url: str) -> None:
        print(f"convlens explorer at {url}  (Ctrl-C to stop)", flush=True)
        print(f"  {who_can_reach(args.host)}", flush=True)

    def stop_job() -> None:  # what a job stopped with the server kept, and where it is
        for job in app.state.jobs.shutdown():
            print(f"The training job stopped with the explorer: {job.message}", flush=True)

    serve(app, args.host, args.port, not args.no_browser, announce, stop_job, token)
    return 0
