"""Quality measurement of generated images: class accuracy, Fréchet distance and precision/recall in a
classifier's feature space, ADM ``.npz`` sample files, and standard FID/IS when Inception weights are given.

    from genloom.eval import evaluate, read_npz
    report = evaluate(images_u8, labels)          # against the shapes test split, with the reference CNN
    print(report.table())
    report = evaluate_npz("samples.npz")          # a large file, streamed
"""

from .._lazy import lazy_getattr

_LAZY = {
    "evaluate": "genloom.eval.scoring",
    "evaluate_npz": "genloom.eval.scoring",
    "EvalReport": "genloom.eval.scoring",
    "read_npz": "genloom.eval.npz",
    "write_npz": "genloom.eval.npz",
    "iter_npz": "genloom.eval.npz",
    "NpzWriter": "genloom.eval.npz",
    "frechet_distance": "genloom.eval.metrics",
    "precision_recall": "genloom.eval.metrics",
    "class_accuracy": "genloom.eval.metrics",
    "inception_metrics": "genloom.eval.inception",
    "colour_report": "genloom.eval.colour",
    "hue_histogram": "genloom.eval.colour",
}


__getattr__ = lazy_getattr("genloom.eval", _LAZY)


__all__ = sorted(_LAZY)
