"""The course plan (COURSE_GUIDE §10): numbers fixed so that links never break."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers import env


@dataclass(frozen=True)
class Chapter:
    """One planned notebook: its number, topic and part of the course."""

    number: int
    topic: str
    part: str

    def notebook(self, root: Path | None = None) -> Path | None:
        """The chapter's notebook file if it exists yet (``notebooks/NN_*.ipynb``), else None."""
        found = self.notebooks(root)
        return found[0] if found else None

    def notebooks(self, root: Path | None = None) -> list[Path]:
        """Every notebook of the chapter, in order: ``NN_*.ipynb``, then the parts that a topic too
        large for one notebook adds with a letter (``NNb_*.ipynb``, ``NNc_*.ipynb``, ...)."""
        folder = (root or env.course_root()) / "notebooks"
        return sorted(folder.glob(f"{self.number:02d}_*.ipynb")) + sorted(
            folder.glob(f"{self.number:02d}[a-z]_*.ipynb"))


CHAPTERS = (
    Chapter(0, "Start here: the course map, the environment, the data set, the helpers", "Foundations"),
    Chapter(1, "Training fundamentals: gradient descent, backpropagation, optimizers, the baseline",
            "Foundations"),
    Chapter(2, "Validation: protocol, cross-validation, bootstrap, precision/recall/F1, seeds",
            "Foundations"),
    Chapter(3, "Saving and loading: .keras, SavedModel, HDF5, TFLite, ONNX; why pickle is unsafe",
            "Packaging"),
    Chapter(4, "Post-training quantization with LiteRT", "Compression"),
    Chapter(5, "Quantization-aware training", "Compression"),
    Chapter(6, "Pruning: schedules, sparsity, structured 2:4", "Compression"),
    Chapter(7, "Weight clustering and collaborative optimization", "Compression"),
    Chapter(8, "Knowledge distillation", "Compression"),
    Chapter(9, "Graph optimization: XLA operator fusion, mixed precision, loop unrolling", "Runtime"),
    Chapter(10, "ONNX and ONNX Runtime; TensorRT where a GPU exists", "Runtime"),
    Chapter(11, "Serving: TF Serving's REST and gRPC APIs, batching, errors, security", "Serving"),
    Chapter(12, "Cloud deployment: containers, Kubernetes, autoscaling, capacity planning", "Serving"),
    Chapter(13, "Monitoring and maintenance: metrics, drift, versioning, canary, rollback",
            "Maintenance"),
    Chapter(14, "Large models: a transformer, weight-only quantization, memory budgets",
            "Large models"),
    Chapter(15, "Capstone: one model from training to a monitored deployment", "Capstone"),
)
