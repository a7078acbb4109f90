"""Generate the README's chapter table and *results at a glance* from the notebooks and results/.

Usage: python tools/update_readme.py           rewrite both sections of README.md
       python tools/update_readme.py --check   exit 1 if the README is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers import nbtools, results  # noqa: E402

SECTIONS = ("chapters", "results")
LEARN_ROW = re.compile(r"^\| You will learn \| (.*) \|$", re.MULTILINE)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


#: The headline results of each notebook in the README's table (its other metrics are one link
#: away, in results/<notebook>.json). A notebook not listed shows its first three metrics; a
#: listed metric missing from its results file is an error (tests/unit/test_lint_and_readme.py).
HEADLINES = {
    "00_start_here": ["notebooks_available", "split_train", "split_validation"],
    "01_train_fundamentals": ["baseline_test_accuracy", "baseline_params"],
    "02_validate_models": ["baseline_test_accuracy", "bootstrap_ci_low", "bootstrap_ci_high"],
    "03_save_load_formats": ["max_abs_diff_tflite", "top1_agreement_min", "tampered_file_refused"],
    "04_quantize_post_training": ["int8_size_ratio", "int8_accuracy_drop_pt", "int8_latency_speedup_invoke"],
    "05_quantization_aware_training": ["qat_vs_control_pt", "qat_vs_control_p_value",
                                       "qat_vs_control_verdict"],
    "06_pruning": ["sparsity", "pruning_vs_control_pt", "pruned_int8_gzip_ratio"],
    "07_clustering_collaborative": ["pcqat_accuracy_drop_pt", "pcqat_packed_ratio"],
    "08_knowledge_distillation": ["student_param_ratio", "distill_gain_pt_mean",
                                  "student_speedup_vs_teacher"],
    "09_optimize_graphs": ["xla_batch1_speedup", "mixed_bf16_cpu_ratio"],
    "10_run_onnx_runtime": ["onnx_max_abs_diff", "ort_vs_tf_latency_ratio", "ort_int8_accuracy_drop_pt"],
    "11_serve_models": ["rollback_failed_requests", "warmup_first_request_ms", "cold_first_request_ms"],
    "11b_load_test_servers": ["batching_throughput_gain", "gc_freeze_p99_ratio", "rest_vs_grpc_p50_ratio"],
    "12_deploy_containers_kubernetes": ["k8s_documents", "per_replica_rps_at_slo", "replicas_for_10k_rps"],
    "12b_autoscale_ray_serve": ["replicas_max_observed", "scale_up_seconds", "rollout_failed_requests"],
    "13_monitor_prometheus": ["alert_detect_seconds", "healthy_p99_ms", "fault_p99_ms"],
    "13b_detect_drift": ["drift_window", "drift_power_brightness", "drift_false_alarm_rate"],
    "13c_canary_rollback": ["canary_bad_responses", "canary_detect_requests", "replay_false_rollback_high"],
    "14_serve_large_models": ["fixture_cosine_min", "int8_weight_ratio", "int8_latency_ratio_cpu"],
    "14b_decode_serve_transformers": ["decode_tokens_per_s_b1", "served_p50_ms"],
    "15_ship_model_end_to_end": ["all_gates_passed", "test_accuracy", "rps_at_slo"],
}


def headline_metrics(stem: str, metrics: dict, strict: bool = True) -> list[str]:
    """The metric names to show for ``stem`` (HEADLINES, else its first three). A listed metric
    the results lack raises KeyError naming it; with ``strict=False`` it is left out (and the first
    three are shown if none is left)."""
    names = HEADLINES.get(stem, list(metrics)[:3])
    missing = [name for name in names if name not in metrics]
    if missing and strict:
        raise KeyError(f"{stem}: headline metrics {missing} are not in results/{stem}.json")
    return [name for name in names if name in metrics] or list(metrics)[:3]


def render_results(records: dict[str, dict], strict: bool = True) -> str:
    """One row per notebook: its headline metrics, the date of its full run, and a link to all of
    its metrics (the results file also names the CPU and its features)."""
    if not records:
        return "_No full-mode results recorded yet._"
    lines = ["| notebook (full run) | headline results | all |", "|---|---|---|"]
    for stem, record in records.items():
        metrics = record["metrics"]
        names = headline_metrics(stem, metrics, strict)
        shown = " · ".join(f"`{name}` {_show(metrics[name])}" for name in names)
        lines.append(f"| [{stem}](notebooks/{stem}.ipynb) ({record['date'][:10]}) | {shown} | "
                     f"[{len(metrics)} metrics](results/{stem}.json) |")
    return "\n".join(lines)


def _runtime(stamp: dict | None) -> str:
    if not stamp:
        return "not yet run"
    full = stamp["runtime_full_s"]
    full_text = f"{full / 60:.1f} min" if full >= 90 else f"{full:.0f} s"
    return f"{full_text} (smoke {stamp['runtime_smoke_s']:.0f} s)"


def render_chapters(config: dict) -> str:
    """The chapter table: number and title, what it teaches, measured runtime, Colab badge."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        return "_No notebooks yet._"
    lines = ["| # | notebook | you will learn | runtime, 2-core CPU | |", "|---|---|---|---|---|"]
    for path in paths:
        notebook = nbtools.read_notebook(path)
        header = nbtools.cell_source(notebook["cells"][0])
        title = header.splitlines()[0].removeprefix("# ").split(" · ", 1)[-1]
        learn = LEARN_ROW.search(header)
        badge = (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"({nbtools.colab_url(config['github_repo'], config['branch'], path.name)})")
        lines.append(f"| {path.name.split('_', 1)[0]} | [{title}](notebooks/{path.name}) | "
                     f"{learn.group(1) if learn else ''} | {_runtime(nbtools.stamp(notebook))} | "
                     f"{badge} |")
    return "\n".join(lines)


def updated_readme(text: str) -> str:
    """``text`` with every generated section replaced by its current content."""
    content = {"chapters": render_chapters(nbtools.course_config(ROOT)),
               "results": render_results(results.load_all(), strict=False)}
    for section in SECTIONS:
        start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"README.md lacks the markers {start} and {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{content[section]}\n{end}{tail}"
    return text


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = updated_readme(text)
    if "--check" in argv:
        if new != text:
            print("README.md is out of date: run python tools/update_readme.py")
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
