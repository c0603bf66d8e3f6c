"""Training the shapes reference classifier (CPU, minutes; reproducible from a seed at a fixed thread count)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...data.shapes import load_split
from ...engine.weights import save_state_dict
from ...training import dihedral_augment
from .shapes_cnn import ShapesCNN


@dataclass
class TrainReport:
    test_accuracy: float
    val_accuracy: float
    seconds: float
    path: Path


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    net.eval()
    correct = 0
    with torch.inference_mode():
        for lo in range(0, len(images), batch):
            correct += int((net(images[lo:lo + batch])[0].argmax(1) == labels[lo:lo + batch]).sum())
    return correct / len(images)


def train_shapes_classifier(
    out: str | Path,
    *,
    seed: int = 0,
    train_size: int = 30_000,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 3e-3,
    width: int = 16,
    eval_size: int = 5_000,
    log: Callable[[str], None] = print,
) -> TrainReport:
    """Train on ``train_size`` rendered images, report val/test accuracy, save safetensors to ``out``."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    log(f"rendering {train_size} training and {2 * eval_size} evaluation images…")
    x_train, y_train = load_split("train", train_size)
    x_val, y_val = load_split("val", eval_size)
    x_test, y_test = load_split("test", eval_size)
    net = ShapesCNN(width=width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((train_size + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(train_size, generator=gen)
        total = 0.0
        for lo in range(0, train_size, batch_size):
            idx = order[lo:lo + batch_size]
            x = dihedral_augment(x_train[idx], gen)
            loss = nn.functional.cross_entropy(net(x)[0], y_train[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / train_size:.4f}, "
            f"val accuracy {accuracy(net, x_val, y_val):.4f} ({time.perf_counter() - t0:.0f} s)")
    val_acc, test_acc = accuracy(net, x_val, y_val), accuracy(net, x_test, y_test)
    path = save_state_dict(net.state_dict(), out, metadata={
        "model": "shapes-cnn", "seed": str(seed), "train_size": str(train_size), "epochs": str(epochs),
        "val_accuracy": f"{val_acc:.4f}", "test_accuracy": f"{test_acc:.4f}"})
    report = TrainReport(test_acc, val_acc, time.perf_counter() - t0, path)
    log(f"test accuracy {test_acc:.4f} on {eval_size} images; saved {path} ({report.seconds:.0f} s)")
    return report
