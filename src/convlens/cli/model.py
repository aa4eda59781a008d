"""Model subcommands: summary, train, evaluate, predict."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np

from convlens.cli.base import add_invert_arguments, command, inverted_note, output_width, wrap_to
from convlens.errors import ConvlensError


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    from convlens.model.presets import PRESETS

    parser.add_argument(
        "--model",
        default="seed-cnn",
        help=f"a preset ({', '.join(PRESETS)}), a model JSON file, or for summary a Keras "
        "(.keras, .h5) or ONNX file (default: seed-cnn, the lesson's CNN)",
    )


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-size",
        metavar="H,W",
        help="the size a preset reads your images at (default: chosen from a folder's images, "
        "their common or median size capped at 64; Fashion-MNIST and MNIST: 28,28)",
    )
    parser.add_argument(
        "--color",
        choices=("grayscale", "rgb"),
        help="a preset's input colour (default: rgb when a folder's images hold colour)",
    )


def _add_data_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--dataset",
        default=default,
        help="fashion-mnist, mnist, or a folder of images with one subfolder per class"
        + (f" (default: {default})" if default else " (default: the one the run was trained on)"),
    )
    parser.add_argument("--data-dir", help="where the dataset's IDX files are (searched first)")


def _add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present, the default), cpu or cuda"
    )


def _load_dataset(name: str, data_dir: str | None, input_shape: tuple[int, ...]):
    from convlens.data import datasets

    height, width, channels = input_shape
    return datasets.load(name, data_dir, image_size=(height, width), channels=channels)


# ---------------------------------------------------------------- summary


@command
def _add_summary(sub) -> None:
    parser = sub.add_parser(
        "summary", help="print a model's layers, shapes and parameters, explained"
    )
    _add_model_argument(parser)
    parser.add_argument(
        "--dataset",
        help="show the preset as it would be built for this dataset (a folder of your images: "
        "their size, colour and classes)",
    )
    _add_input_arguments(parser)
    parser.add_argument("--run", help="summarise the model of this run directory instead")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--no-explain", action="store_true", help="leave out the Why column")
    parser.set_defaults(func=_run_summary)


def _run_summary(args: argparse.Namespace) -> int:
    model, why = _summary_model(args)
    if args.json:
        print(json.dumps({**model.summary_dict(), **({"input_why": why} if why else {})}, indent=2))
        return 0
    width = output_width()
    if why:
        print(wrap_to(f"input {why}", width))
    print(model.summary_text(explain=not args.no_explain, width=width))
    return 0


def _summary_model(args: argparse.Namespace):
    """The model to summarise and why its input is so (None when nothing chose it)."""
    from convlens.interop.reading import is_model_file, read_model_file
    from convlens.model.files import SPEC_FILE, read_spec
    from convlens.model.presets import resolve_model
    from convlens.runs.directory import read_metrics, resolve_run
    from convlens.training.plan import parse_input_size, plan_training

    if args.run:
        path = resolve_run(args.run)
        return read_spec(path / SPEC_FILE), read_metrics(path).get("input_why")
    if is_model_file(args.model):  # a Keras or ONNX file, read without running anything in it
        return read_model_file(args.model).model, None
    if args.dataset or args.input_size or args.color:
        plan = plan_training(
            args.model,
            args.dataset or "fashion-mnist",
            input_size=parse_input_size(args.input_size),
            color=args.color,
        )
        return plan.model, plan.input_why
    return resolve_model(args.model), None


# ---------------------------------------------------------------- train


@command
def _add_train(sub) -> None:
    parser = sub.add_parser("train", help="train a model and write a run directory")
    _add_model_argument(parser)
    _add_data_arguments(parser, default="fashion-mnist")
    _add_input_arguments(parser)
    parser.add_argument(
        "--recipe",
        help="fast (the default), lesson (the lesson's exact Adam 1e-3, batch 32, 5 epochs) "
        "or best (the best preset's own, its default)",
    )
    parser.add_argument("--epochs", type=int, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, help="images per optimiser step")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, help="random seed (same seed, same weights on CPU)")
    parser.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="evaluate and save an exponential moving average of the weights with this "
        "per-step decay, like 0.999 (0 turns it off; default: the recipe's)",
    )
    parser.add_argument(
        "--keep",
        type=float,
        metavar="FRACTION",
        help="from epoch 2, train each epoch on this fraction of the images, those with the "
        "highest loss when last trained on (selective backprop), like 0.33; 1 trains on every "
        "image (default: the recipe's)",
    )
    parser.add_argument(
        "--shift",
        type=int,
        metavar="PIXELS",
        help="shift each training image by up to this many pixels (default: 1 on a dataset "
        "too small for the recipe's steps, else 0; 0 turns it off)",
    )
    parser.add_argument(
        "--target-accuracy",
        type=float,
        help="stop once training accuracy passes this, like 0.9",
    )
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        help="the training step's products: auto (the default) uses bfloat16 where the "
        "processor has it natively (about 1.7x faster), else float32; weights, loss and test "
        "accuracy stay float32. The lesson recipe uses float32",
    )
    parser.add_argument("--device", help="auto (CUDA when present, the default), cpu or cuda")
    parser.add_argument("--out", help="the run directory to write (default: runs/<model>-<time>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN",
        help="continue an interrupted run from its last epoch (default: the latest); "
        "its model, data and recipe are the ones it started with",
    )
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from convlens.training.train import nothing_kept

    try:
        return _train(args)
    except KeyboardInterrupt:  # before an epoch was saved (after one: TrainingInterrupted)
        if args.resume is None:
            print(nothing_kept(), file=sys.stderr)
        else:
            named = f" {args.resume}" if args.resume else ""
            print(
                "interrupted before the resumed run trained: it waits as it was; continue "
                f"with `convlens train --resume{named}`.",
                file=sys.stderr,
            )
        return 130


def _train(args: argparse.Namespace) -> int:
    """Plan (or find the run to resume), train with a progress bar, write the run."""
    from convlens.cli.progress import TrainingProgress
    from convlens.training.distributed import join, leave, resolve_device
    from convlens.training.recipes import keep_in_epoch
    from convlens.training.train import TrainingInterrupted, kept_epochs, train_to_run
    from convlens.views.report import write_run_report

    model, dataset, config, resume, banner = (
        _resumed_training(args) if args.resume is not None else _new_training(args)
    )
    group = join(resolve_device(config.device))  # torchrun's processes, or this one alone
    if group.is_main:  # every process plans the same run; one says so
        print(banner)
    first_epoch = resume.state.epoch + 1 if resume else 1
    try:
        with TrainingProgress(
            config.epochs,
            len(dataset.train),
            config.batch_size,
            enabled=not args.quiet and group.is_main,
            first_epoch=first_epoch,
            printing=group.is_main,
            keep_in_epoch=partial(keep_in_epoch, config),
        ) as progress:
            path, result = train_to_run(
                model,
                dataset,
                config,
                out=args.out,
                data_dir=args.data_dir,
                resume=resume,
                group=group,
                callbacks=[progress],
                finish=lambda directory, fit: write_run_report(directory, dataset.test, fit.test),
            )
    except TrainingInterrupted as stop:
        print(
            f"interrupted after epoch {stop.epochs_done} of {config.epochs}: "
            f"{kept_epochs(stop.epochs_done)}; continue with `convlens train --resume {stop.run}`",
            file=sys.stderr,
        )
        return 130
    finally:
        leave(group)
    if not group.is_main:
        return 0
    if result.history.stopped_early:
        print(
            f"stopped after epoch {len(result.history.epochs)}: "
            f"training accuracy passed {config.target_accuracy}"
        )
    print(
        f"test accuracy {result.test.accuracy:.4f} (loss {result.test.loss:.4f}) "
        f"in {result.seconds:.1f} s"
    )
    print(f"run written to {path}")
    return 0


def _new_training(args: argparse.Namespace):
    """Model, dataset and config from the command line, for a new run, and its banner."""
    from convlens.training.distributed import resolve_device
    from convlens.training.plan import parse_input_size, plan_training
    from convlens.training.precision import describe as describe_precision
    from convlens.training.precision import resolve_precision

    if args.device is not None:  # a device that is not there: said before reading any data
        resolve_device(args.device)
    plan = plan_training(
        args.model,
        args.dataset,
        args.data_dir,
        recipe=args.recipe,
        input_size=parse_input_size(args.input_size),
        color=args.color,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        ema_decay=args.ema,
        keep_fraction=args.keep,
        shift_augment=args.shift,
        small_data_shift=args.shift,
        target_accuracy=args.target_accuracy,
        threads=args.threads,
        device=args.device,
        precision=args.precision,
    )
    model, dataset, config = plan.model, plan.dataset, plan.config
    banner = (
        f"training {model.name} ({model.total_params:,} parameters) on {dataset.name}: "
        f"{len(dataset.train):,} train / {len(dataset.test):,} test images, recipe "
        f"{config.recipe}, {config.epochs} epochs\ninput {plan.input_why}"
    )
    if dataset.split:
        banner += (
            f"\ntest split: {len(dataset.test):,} images held out "
            f"({dataset.split['test_fraction']:.0%} of each class, seed {dataset.split['seed']}), "
            "recorded in the run"
        )
    if config.shift_augment:
        banner += f"\n{_small_dataset_line(config, len(dataset.train), args.epochs is not None)}"
    if model.test_time_flip and config.flip_augment:
        banner += (
            f"\nmirrors: {dataset.name}'s classes look the same mirrored, so each training image "
            "is mirrored at random and the model predicts from each image and its mirror"
        )
    precision = resolve_precision(config.precision, resolve_device(config.device))
    if precision == "bfloat16":
        banner += f"\n{describe_precision(precision)}"
    if dataset.skipped:
        shown = ", ".join(dataset.skipped[:3]) + (", ..." if len(dataset.skipped) > 3 else "")
        banner += f"\nskipped {len(dataset.skipped)} file(s) that are not images: {shown}"
    return model, dataset, config, None, banner


def _small_dataset_line(config, train_images: int, epochs_given: bool) -> str:
    """What a split too small for the recipe's steps changes: the epochs (unless given), shifts."""
    from convlens.training.recipes import total_steps

    shifted = f"each image shifted by up to {config.shift_augment} pixel(s) as it trains"
    if not epochs_given:
        return (
            f"small dataset: {config.epochs} epochs for at least {config.min_steps} steps, "
            f"{shifted}"
        )
    steps = total_steps(config, train_images, config.batch_size)
    epochs = "1 epoch" if config.epochs == 1 else f"{config.epochs} epochs"
    return (
        f"small dataset: {epochs} as given ({steps:,} steps; without --epochs the recipe would "
        f"train for at least {config.min_steps:,}), {shifted}"
    )


def _resumed_training(args: argparse.Namespace):
    """Model, dataset and config of the interrupted run named by --resume, and its banner."""
    from convlens.training.distributed import resolve_device
    from convlens.training.train import find_resumable

    resume = find_resumable(args.resume or None)
    resolve_device(resume.config.device)  # the device it started on, before reading any data
    args.data_dir = args.data_dir or resume.data_dir
    dataset = _load_dataset(resume.dataset, args.data_dir, resume.model.input_shape)
    dataset = dataset.with_train_images(resume.train_images)  # the images it began with
    banner = (
        f"resuming {resume.staged.final} after epoch {resume.state.epoch} of "
        f"{resume.config.epochs} ({resume.model.name} on {dataset.name})"
    )
    return resume.model, dataset, resume.config, resume, banner


# ---------------------------------------------------------------- evaluate


@command
def _add_evaluate(sub) -> None:
    parser = sub.add_parser("evaluate", help="test accuracy, per-class accuracy, confusion matrix")
    parser.add_argument("--run", help="run directory (default: the latest under runs/)")
    _add_device_argument(parser)
    _add_data_arguments(parser, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from convlens.runs.evaluate import evaluate
    from convlens.runs.loading import load_run, load_run_dataset
    from convlens.training.distributed import resolve_device

    device = resolve_device(args.device)  # a device that is not there: said before loading
    run = load_run(args.run)
    run.network.to(device)
    dataset = load_run_dataset(run, args.dataset, args.data_dir)
    result = evaluate(run.network, dataset.test, run.model.input_shape, run.model.num_classes)
    if args.json:
        print(json.dumps({"run": str(run.path), **result.as_dict(dataset.class_names)}, indent=2))
        return 0
    print(
        f"run {run.path}: test accuracy {result.accuracy:.4f} (loss {result.loss:.4f}) "
        f"on {len(dataset.test):,} images of {dataset.name}"
    )
    print(_per_class_table(dataset.class_names, result.per_class_accuracy))
    print(_confusion_table(dataset.class_names, result.confusion))
    return 0


def _per_class_table(names: tuple[str, ...], accuracy: np.ndarray) -> str:
    width = max(len(n) for n in names)
    lines = ["per-class accuracy:"]
    for name, value in zip(names, accuracy, strict=True):
        shown = "   n/a" if np.isnan(value) else f"{value:6.1%}"
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines)


def _confusion_table(names: tuple[str, ...], confusion: np.ndarray) -> str:
    width = max(len(n) for n in names)
    cell = max(5, len(str(int(confusion.max()))) + 1)
    heads = "".join(f"{i:>{cell}}" for i in range(len(names)))
    lines = [
        "confusion matrix (rows: true class, columns: predicted class number):",
        f"  {'':<{width + 4}}{heads}",
    ]
    for index, (name, row) in enumerate(zip(names, confusion, strict=True)):
        cells = "".join(f"{int(v):>{cell}}" for v in row)
        lines.append(f"  {index:>2}  {name:<{width}}{cells}")
    return "\n".join(lines)


# ---------------------------------------------------------------- predict


@command
def _add_predict(sub) -> None:
    parser = sub.add_parser("predict", help="classify PNG/JPEG images with a trained run")
    _add_device_argument(parser)
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, or folders (searched recursively for PNG/JPEG/BMP/GIF/WEBP; "
        "needs --out)",
    )
    parser.add_argument("--run", help="run directory (default: the latest under runs/)")
    add_invert_arguments(parser)
    parser.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--out", help="write one CSV row per image to this file (streams large folders)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="images per batch with --out (default 256)"
    )
    parser.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from convlens.images import read_image
    from convlens.runs.evaluate import predict_proba
    from convlens.runs.loading import load_run
    from convlens.runs.predict import model_image
    from convlens.training.distributed import resolve_device

    if args.top < 1:
        raise ConvlensError(
            f"--top {args.top} would show no class; give how many of the likeliest classes to "
            "show, 1 or more (default 3)."
        )
    if args.out or any(Path(path).is_dir() for path in args.images):
        return _run_predict_folder(args)
    device = resolve_device(args.device)
    run = load_run(args.run)
    run.network.to(device)
    read = [model_image(run, read_image(path), args.invert) for path in args.images]
    batch = np.stack([pixels for pixels, _ in read])  # (N, H, W, C) uint8
    probabilities = predict_proba(run.network, batch, run.model.input_shape)
    top = min(args.top, len(run.class_names))  # more than there are: every class
    results = [
        {**_top_classes(path, probs, run.class_names, top), "inverted": bool(why)}
        for path, probs, (_, why) in zip(args.images, probabilities, read, strict=True)
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result, (_, why) in zip(results, read, strict=True):
        ranked = ", ".join(f"{c['class']} {c['probability']:.1%}" for c in result["top"])
        print(f"{result['image']}: {ranked}{inverted_note(why)}")
    return 0


def _run_predict_folder(args: argparse.Namespace) -> int:
    from convlens.cli.progress import prediction_bar
    from convlens.runs.loading import load_run
    from convlens.runs.predict import predict_folder
    from convlens.training.distributed import resolve_device

    if not args.out:
        raise ConvlensError(
            "a folder needs --out to name the CSV file its predictions go to; "
            "add --out predictions.csv."
        )
    device = resolve_device(args.device)
    run = load_run(args.run)
    run.network.to(device)
    with prediction_bar() as on_progress:
        summary = predict_folder(
            run, args.images, args.out, args.batch_size, args.invert, on_progress
        )
    if summary.skipped:
        listed = ", ".join(f"{path} ({why})" for path, why in summary.skipped)
        count = len(summary.skipped)
        what = "1 file that is not an image" if count == 1 else f"{count} files that are not images"
        print(f"skipped {what}: {listed}", file=sys.stderr)
    print(f"wrote predictions for {summary.predicted:,} images to {summary.out}")
    if summary.inverted and args.invert == "auto":
        print(
            f"{summary.inverted:,} of them were inverted first (their border is light; the model "
            "was trained on light shapes on black): the CSV's inverted column says which; "
            "--no-invert keeps them as they are"
        )
    return 0


def _top_classes(path: str, probs: np.ndarray, names: tuple[str, ...], top: int) -> dict:
    order = np.argsort(-probs)[:top]
    return {
        "image": str(Path(path)),
        "top": [
            {"class": names[i], "index": int(i), "probability": float(probs[i])} for i in order
        ],
    }
