"""The progress bar as a terminal shows it (tests otherwise never run with a TTY)."""

import io

from rich.console import Console

from convlens.cli.progress import TrainingProgress
from convlens.training.callbacks import EpochRecord


def test_the_bar_runs_through_several_epochs_in_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with TrainingProgress(epochs=2, images=100, batch_size=10, console=console) as progress:
        assert progress.enabled
        for epoch in (1, 2):
            for batch in range(10):
                progress.on_batch_end(epoch, batch, 0.5, 0.8)
            progress.on_epoch_end(EpochRecord(epoch, 0.5, 0.8, 0.4, 0.85, 1.0, 1e-3))
    text = out.getvalue()
    assert "epoch 1/2  loss 0.5000  accuracy 0.8000  test loss 0.4000  test accuracy 0.8500" in text
    assert "epoch 2/2" in text


def test_no_bar_outside_a_terminal_but_the_epoch_lines_remain():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with TrainingProgress(epochs=1, images=10, batch_size=10, console=console) as progress:
        assert not progress.enabled
        progress.on_batch_end(1, 0, 0.5, 0.8)
        progress.on_epoch_end(EpochRecord(1, 0.5, 0.8, None, None, 1.0, 1e-3))
    assert out.getvalue().strip() == "epoch 1/1  loss 0.5000  accuracy 0.8000  1.0 s"


def test_figures_over_the_hardest_images_are_labelled_so():
    """From the epoch selection starts, the bar's loss and accuracy are over the hardest third."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    keep = {1: 1.0, 2: 1 / 3}
    with TrainingProgress(
        epochs=2, images=90, batch_size=10, console=console, keep_in_epoch=keep.get
    ) as progress:
        shown = {}
        for epoch in (1, 2):
            for batch in range(progress.batches(epoch)):
                progress.on_batch_end(epoch, batch, 0.5, 0.8)
            shown[epoch] = _bar_text(progress)
            progress.on_epoch_end(EpochRecord(epoch, 0.4, 0.9, 0.4, 0.85, 1.0, 1e-3))
    assert "hardest" not in shown[1] and "loss 0.5000  accuracy 0.8000" in shown[1]
    assert "hardest 33%: loss 0.5000  accuracy 0.8000" in shown[2]
    assert "epoch 2/2  loss 0.4000  accuracy 0.9000" in out.getvalue()  # the line: every image


def _bar_text(progress: TrainingProgress) -> str:
    """The bar's row as a terminal would show it now."""
    recorder = Console(file=io.StringIO(), width=160, record=True)
    recorder.print(progress.progress.make_tasks_table(progress.progress.tasks))
    return recorder.export_text()
