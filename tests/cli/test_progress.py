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
