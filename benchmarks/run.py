"""Measure scorelib's speed and the course's run times; write benchmarks/RESULTS.md.

    python benchmarks/run.py                  # everything, about 10 minutes on 2 cores
    python benchmarks/run.py --only training  # or: dimension, limit, notebooks, suite

Parts:

* training: the naive per-step loop (train_naive.py) against scorelib.train.fit (train_scorelib.py) on the same
  work, alternating fresh processes; whole-process wall time, compile time and steady-state time per step; medians.
* dimension: per-step cost of exact ISM, SSM and DSM against data dimension (scorelib.benchmark.step_cost_vs_dim).
* limit: exact ISM's step against this CPU's throughput on the matrix products that dominate it.
* notebooks: each notebook executed top to bottom in a fresh kernel, one after the other.
* suite: the README's `pytest`, with wall time and peak resident memory of its whole process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# The training and dimension benchmarks compare compile times across fresh processes: without scorelib's persistent
# compilation cache (the naive loop does not import scorelib, so it would compile cold while scorelib loaded warm).
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "SCORELIB_JAX_CACHE": "0"}


class TreeMemory:
    """Samples the summed resident memory of a process and all its descendants from /proc."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.peak_total_mb = 0.0
        self.peak_single_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            found.append(p)
            todo.extend(children.get(p, []))
        return found

    @staticmethod
    def _rss_mb(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _run(self):
        while not self._stop.is_set():
            rss = [self._rss_mb(p) for p in self._descendants()]
            if rss:
                self.peak_total_mb = max(self.peak_total_mb, sum(rss))
                self.peak_single_mb = max(self.peak_single_mb, max(rss))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> dict:
    """Run a command; wall time, and peak memory of its process tree (total and largest single process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = TreeMemory(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    memory.stop()
    return {
        "wall": wall,
        "returncode": proc.returncode,
        "output": out,
        "peak_total_mb": memory.peak_total_mb,
        "peak_single_mb": memory.peak_single_mb,
    }


def bench_training(repeats: int) -> dict:
    runs = {"naive loop": [], "naive loop, value_and_grad": [], "scorelib fit": []}
    for i in range(repeats):
        for script in ("train_naive.py", "train_naive.py --fused", "train_scorelib.py"):
            name, *flags = script.split()
            r = run_measured([sys.executable, str(HERE / name), *flags], cwd=HERE)
            if r["returncode"]:
                raise RuntimeError(f"{script} failed:\n{r['output'][-3000:]}")
            data = json.loads(r["output"].strip().splitlines()[-1])
            data["process_seconds"] = r["wall"]
            data["peak_mb"] = r["peak_total_mb"]
            runs[data["name"]].append(data)
            print(
                f"  run {i + 1} {data['name']:27s}: process {r['wall']:.2f} s, "
                f"compile {data['compile_seconds']:.2f} s, steady {data['steady_step_ms']:.3f} ms/step",
                flush=True,
            )
    keys = (
        "process_seconds",
        "import_seconds",
        "compile_seconds",
        "steady_step_ms",
        "train_seconds",
        "final_loss",
        "peak_mb",
    )
    return {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in runs.items()}


def bench_dimension() -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ["JAX_PLATFORMS"] = "cpu"
    import scorelib.benchmark

    dims = (2, 8, 32, 64, 128)
    return {"dims": dims, "costs": scorelib.benchmark.step_cost_vs_dim(dims, n_steps=20, repeats=5)}


def bench_limit(repeats: int) -> dict:
    """How close exact ISM's step (d = 2, the training benchmark's work) comes to this CPU's matmul throughput.

    The step's floating-point operations are XLA's own count for the compiled step (``cost_analysis``); the
    reference is a compiled chain of the products that dominate it, (128 x 128) @ (128 x 128): batch x width times
    width x width.
    """
    sys.path.insert(0, str(ROOT))
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    import scorelib.benchmark

    _, one_step, _ = scorelib.benchmark._timed_steps("ism", 2, 128, 128, 1, jax.random.key(0))
    analysis = one_step.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    step_flops = float(analysis["flops"])
    step_seconds = scorelib.benchmark.step_cost_vs_dim((2,), loss_names=("ism",), n_steps=200, repeats=repeats)
    step_seconds = step_seconds["ism"]["step_seconds"][0]

    return {
        "step_flops": step_flops,
        "step_seconds": step_seconds,
        "step_flops_per_second": step_flops / step_seconds,
        "matmul_flops_per_second": _matmul_flops_per_second(128, 128, 2000, repeats),
        "step_matmul_flops": 2 * 128**3,
        "digits": _digits_step(repeats),
    }


def _median_seconds(fn, args, repeats: int) -> float:
    """Median wall time of ``fn(*args)`` over ``repeats`` runs, after one run that is not timed."""
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _matmul_flops_per_second(rows: int, width: int, n_products: int, repeats: int) -> float:
    """This CPU's rate on a compiled chain of (rows x width) @ (width x width) products."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def chain(h, w):
        return jax.lax.fori_loop(0, n_products, lambda i, h: h @ w, h)

    args = (jnp.ones((rows, width), jnp.float32), jnp.eye(width, dtype=jnp.float32))
    return n_products * 2 * rows * width**2 / _median_seconds(chain, args, repeats)


def _digits_step(repeats: int) -> dict:
    """Notebook 06's training step (its network, batch size and loss), its flop count and time, as above.

    Its sizes are read from the notebook's source, so that this measures the step the notebook runs.
    """
    import re

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import scorelib as sl
    import scorelib.benchmark

    source = (ROOT / "notebooks" / "06_digits_8x8.py").read_text()
    steps, batch_size = (int(v) for v in re.search(r"^STEPS, BATCH_SIZE = ([\d_]+), (\d+)", source, re.M).groups())
    hidden = tuple(int(v) for v in re.search(r"^HIDDEN = \(([\d, ]+)\)", source, re.M).group(1).split(","))
    x_train = jnp.asarray(sl.digits.DigitsBenchmark(seed=0).split.X_train)
    sigmas = np.geomspace(1.0, 0.03, 12)  # the level values do not change the cost
    params = sl.nets.preconditioned_ncsn_init(jax.random.key(0), x_train, hidden)
    optimizer = optax.adam(1e-3)
    one_step = sl.train.train_step(lambda p, batch, key: sl.losses.ncsn_loss(
        sl.nets.bind(sl.nets.preconditioned_ncsn_apply, p), batch, key, sigmas), optimizer)
    n_steps = 200
    _, compiled, args = scorelib.benchmark._compiled_steps(one_step, x_train[:batch_size], params, optimizer,
                                                           jax.random.key(1), n_steps)
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    step_seconds = _median_seconds(compiled, args, repeats) / n_steps
    flops = float(analysis["flops"])  # XLA counts the scan's body once: the flops of one step
    width = max(hidden)  # the reference at this step's sizes: (batch x width) @ (width x width) products
    return {"steps": steps, "batch_size": batch_size, "hidden": hidden, "step_flops": flops,
            "step_seconds": step_seconds, "step_flops_per_second": flops / step_seconds,
            "matmul_flops_per_second": _matmul_flops_per_second(batch_size, width, 1000, repeats)}


def bench_notebooks() -> dict:
    """Each notebook in a fresh kernel, twice: cold (an empty compilation cache) and warm (the cache it just filled)."""
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    os.environ["JAX_PLATFORMS"] = "cpu"
    times = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        times[path.stem] = {}
        with tempfile.TemporaryDirectory(prefix="scorelib-bench-cache-") as cache:
            os.environ["SCORELIB_JAX_CACHE"] = cache  # the kernel inherits it
            for run in ("cold", "warm"):
                nb = nbformat.read(path, as_version=4)
                start = time.perf_counter()
                NotebookClient(
                    nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                ).execute()
                times[path.stem][run] = time.perf_counter() - start
        os.environ.pop("SCORELIB_JAX_CACHE")
        t = times[path.stem]
        print(f"  {path.stem}: cold {t['cold']:.1f} s, warm {t['warm']:.1f} s", flush=True)
    return times


def bench_suite() -> dict:
    """The README's `pytest` twice: an empty compilation cache (a fresh machine, CI), then the one it filled."""
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory(prefix="scorelib-bench-cache-") as cache:
        for run in ("cold", "warm"):
            r = run_measured([sys.executable, "-m", "pytest"], env={**ENV, "SCORELIB_JAX_CACHE": cache})
            if r["returncode"]:
                raise RuntimeError(f"pytest failed:\n{r['output'][-3000:]}")
            summary = [line for line in r["output"].splitlines() if " passed" in line][-1].strip("= ")
            results[run] = {
                "wall": r["wall"],
                "summary": summary,
                "peak_total_mb": r["peak_total_mb"],
                "peak_single_mb": r["peak_single_mb"],
            }
            print(f"  {run}: {r['wall']:.0f} s ({summary})", flush=True)
    return results


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import jax
    import jaxlib
    import optax

    return (
        f"{os.cpu_count()} CPU cores ({model}), no GPU; Python {platform.python_version()}, jax {jax.__version__}, "
        f"jaxlib {jaxlib.__version__}, optax {optax.__version__}, {platform.system()} {platform.release()}"
    )


BUDGETS = {
    "01_ism_1d_mixture": 45,
    "02_ism_2d_ring": 45,
    "03_swiss_roll_sliced": 60,
    "04_denoising_and_kde": 45,
    "05_ncsn_annealed_langevin": 60,
    "06_digits_8x8": 75,
    "07_score_sdes": 60,
}


def write_results(results: dict, path: Path) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}, on {results['machine']}.",
        "",
    ]
    if results.get("measured"):  # `--only` re-measures some parts and keeps the others from an earlier run
        lines += ["Measured: " + "; ".join(f"{part} on {day}" for part, day in results["measured"].items()) + ".", ""]
    if "training" in results:
        t = results["training"]
        naive, fast = t["naive loop"], t["scorelib fit"]
        lines += [
            "## Training: a naive per-step loop against `scorelib.train.fit`",
            "",
            "Same work: exact ISM, MLP 2-128-128-2 softplus, Adam 1e-3, batch 128, 2000 steps, a fresh swiss-roll "
            "batch every step. `train_naive.py` is the seed notebook's loop (per-step `jax.jit` update computing the "
            "loss and then its gradient, host-side scikit-learn batches, `vmap(jacfwd)` trace, `.item()` every step; "
            "`--fused` computes both with `jax.value_and_grad`); `train_scorelib.py` calls "
            f"`sl.train.fit` with `sl.losses.ism_loss`. Medians of {results['repeats']} alternating fresh processes.",
            "",
            "| | whole process (s) | import (s) | compile (s) | steady step (ms) | peak memory (MB) | final loss |",
            "|---|---|---|---|---|---|---|",
        ]
        fused = t["naive loop, value_and_grad"]
        for name, r in (
            ("naive loop (the seed's form)", naive),
            ("naive loop with value_and_grad", fused),
            ("scorelib fit", fast),
        ):
            lines.append(
                f"| {name} | {r['process_seconds']:.2f} | {r['import_seconds']:.2f} | "
                f"{r['compile_seconds']:.2f} | {r['steady_step_ms']:.3f} | {r['peak_mb']:.0f} | "
                f"{r['final_loss']:.2f} |"
            )
        lines += [
            "",
            f"**scorelib is {naive['process_seconds'] / fast['process_seconds']:.2f}x faster end to end** "
            f"(target 2.5x) and **{naive['steady_step_ms'] / fast['steady_step_ms']:.2f}x faster per step** "
            "(target 2x), against the loop as the seed notebook wrote it. Against the same loop written "
            "with `jax.value_and_grad`: "
            f"{fused['process_seconds'] / fast['process_seconds']:.2f}x end to end, "
            f"{fused['steady_step_ms'] / fast['steady_step_ms']:.2f}x per step. "
            "Compile time is what JAX reports through `jax.monitoring` (tracing, lowering, XLA); "
            "the steady step is the rest of the training time divided by the steps.",
            "",
        ]
        if "dimension" in results:
            step_ms = 1e3 * results["dimension"]["costs"]["ism"]["step_seconds"][0]
            lines += [
                "Where the time goes: the step itself (forward pass, two Jacobian-vector products and the backward "
                f"pass through them, for a 128-wide MLP at batch 128) costs about {step_ms:.2f} ms on this CPU in "
                "both loops (the d = 2 row below); a `vmap(jacfwd)` trace compiles to the same work as scorelib's "
                "batched JVPs. What scorelib removes is everything around it: host-side batches, a dispatch and a "
                "device-to-host sync per step (together the difference in steady step time), and compile and import "
                "time (initial weights drawn on the host instead of compiling a random-normal kernel per layer "
                "shape; matplotlib and ipywidgets imported on first use). With the step compute-bound, the ratio "
                "cannot exceed (compute + overhead) / compute, the naive loop's steady step over the compiled step "
                f"alone, {naive['steady_step_ms'] / step_ms:.2f}x per step here, so **the 2.5x and 2x targets are not "
                "met on this machine**.",
                "",
            ]
    if "limit" in results:
        lim = results["limit"]
        share = lim["step_flops_per_second"] / lim["matmul_flops_per_second"]
        lines += [
            "## How close a step comes to this CPU's arithmetic limit",
            "",
            f"XLA counts {lim['step_flops'] / 1e6:.1f} million floating-point operations in one compiled exact-ISM "
            f"step at d = 2 (its `cost_analysis`: forward pass, two Jacobian-vector products, the backward pass "
            f"through them and Adam). The step takes {1e3 * lim['step_seconds']:.3f} ms (a scan of 200 steps, "
            f"median of {results['repeats']} runs): **{lim['step_flops_per_second'] / 1e9:.1f} GFLOP/s**. A compiled "
            "chain of the products that dominate it, (128 x 128) @ (128 x 128), batch x width times width x width, "
            f"runs at **{lim['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s** on this CPU, so the step runs at "
            f"{100 * share:.0f}% of that. Besides the large products the step does work that runs far below that "
            "rate and is not timed separately here: the softplus and its first and second derivatives on every "
            "hidden unit (forward, tangents and backward), the thin d-wide products at the input and output layers, "
            "Adam's element-wise update, and the loop itself. A much faster step would need fewer passes (SSM's "
            "single projection, DSM's none: the table below), not a faster loop.",
            "",
        ]
        dig = lim.get("digits")
        if dig:
            train_seconds = dig["steps"] * dig["step_seconds"]
            text = (
                f"Notebook 06 trains its preconditioned network (hidden widths {', '.join(map(str, dig['hidden']))}, "
                f"batch {dig['batch_size']}, the multi-level DSM loss) for {dig['steps']} steps. XLA counts "
                f"{dig['step_flops'] / 1e6:.0f} million floating-point operations in one step, which takes "
                f"{1e3 * dig['step_seconds']:.2f} ms: **{dig['step_flops_per_second'] / 1e9:.0f} GFLOP/s**, "
                f"{100 * dig['step_flops_per_second'] / dig['matmul_flops_per_second']:.0f}% of the "
                f"{dig['matmul_flops_per_second'] / 1e9:.0f} GFLOP/s of a chain of its largest products, "
                f"({dig['batch_size']} x {max(dig['hidden'])}) @ ({max(dig['hidden'])} x {max(dig['hidden'])}) "
                f"(no Jacobian-vector products here, and wider products than exact ISM's). Its {dig['steps']} steps "
                f"are {train_seconds:.0f} s of arithmetic that no compilation cache can skip"
            )
            nb06 = results.get("notebooks", {}).get("06_digits_8x8")
            if nb06:
                others = [t["warm"] / t["cold"] for n, t in results["notebooks"].items() if n != "06_digits_8x8"]
                text += (f", {100 * train_seconds / nb06['warm']:.0f}% of the notebook's warm run: the reason its warm "
                         f"run is {nb06['warm'] / nb06['cold']:.2f} of its cold one (the issue's aim is 0.7 at most), "
                         f"where the other notebooks, whose runs are less arithmetic and more compilation, come out "
                         f"between {min(others):.2f} and {max(others):.2f}")
            lines += [text + ".", ""]
    if "dimension" in results:
        dims, costs = results["dimension"]["dims"], results["dimension"]["costs"]
        lines += [
            "## Per-step cost against data dimension",
            "",
            "One compiled Adam step, MLP d-128-128-d, batch 128 (`scorelib.benchmark.step_cost_vs_dim`, "
            "median of 5 timed runs of 20 steps). Notebook 03 draws this from its own run.",
            "",
            "| d | exact ISM (ms) | SSM (ms) | DSM (ms) | ISM / SSM |",
            "|---|---|---|---|---|",
        ]
        for i, d in enumerate(dims):
            ism, ssm, dsm = (1e3 * costs[k]["step_seconds"][i] for k in ("ism", "ssm", "dsm"))
            lines.append(f"| {d} | {ism:.2f} | {ssm:.2f} | {dsm:.2f} | {ism / ssm:.1f} |")
        lines.append("")
    if "notebooks" in results:
        nbs = results["notebooks"]
        lines += [
            "## Notebooks, each in a fresh kernel, one at a time",
            "",
            "Cold: an empty compilation cache (a first run). Warm: the same notebook again in a fresh kernel, with the "
            "cache the cold run filled (every later run on the same machine; `scorelib/_cache.py`).",
            "",
            "| notebook | cold (s) | warm (s) | warm / cold | budget (s) |",
            "|---|---|---|---|---|",
        ]
        for name, t in nbs.items():
            lines.append(f"| {name} | {t['cold']:.1f} | {t['warm']:.1f} | {t['warm'] / t['cold']:.2f} | "
                         f"{BUDGETS.get(name, '')} |")
        cold, warm = (sum(t[k] for t in nbs.values()) for k in ("cold", "warm"))
        lines += [f"| total | {cold:.1f} | {warm:.1f} | {warm / cold:.2f} | |", ""]
    if "suite" in results:
        s = results["suite"]
        lines += [
            "## The whole suite",
            "",
            "`pytest` from the repository root (unit tests, every notebook, the exercise checks, the student "
            "edition and the browser test; two workers), ceiling 300 s, aim 240 s:",
            "",
            "| compilation cache | wall time (s) | tests | peak memory, whole tree (MB) | largest process (MB) |",
            "|---|---|---|---|---|",
        ]
        for run, label in (("cold", "empty (a fresh machine, CI)"), ("warm", "filled by the run before")):
            r = s[run]
            lines.append(f"| {label} | {r['wall']:.0f} | {r['summary']} | {r['peak_total_mb']:.0f} | "
                         f"{r['peak_single_mb']:.0f} |")
        lines += [
            "",
            "Peak resident memory is sampled every 0.25 s; the total adds up resident sets, so libraries shared "
            "between the processes (jaxlib above all) are counted once per process. The browser test "
            "(`tests/test_browser.py`: JupyterLab and Chromium running notebook 02 again and opening every "
            'notebook) runs on one worker; `pytest -m "not browser"` leaves it out.',
            "",
        ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["training", "dimension", "limit", "notebooks", "suite"], action="append")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--from-json", type=Path, help="only rewrite the Markdown from a saved RESULTS.json")
    args = parser.parse_args()
    if args.from_json:
        write_results(json.loads(args.from_json.read_text()), args.output)
        print(args.output.read_text())
        return
    parts = args.only or ["training", "dimension", "limit", "notebooks", "suite"]
    saved = args.output.with_suffix(".json")
    # --only re-measures some parts and keeps the others from the last full run.
    results = json.loads(saved.read_text()) if args.only and saved.exists() else {}
    results.update({"machine": machine(), "repeats": args.repeats})
    measured = results.setdefault("measured", {})
    if "training" in parts:
        print("training benchmark", flush=True)
        measured["training"] = time.strftime("%Y-%m-%d")
        results["training"] = bench_training(args.repeats)
    if "dimension" in parts:
        print("cost against dimension", flush=True)
        measured["dimension"] = time.strftime("%Y-%m-%d")
        results["dimension"] = bench_dimension()
    if "limit" in parts:
        print("the step against this CPU's matmul throughput", flush=True)
        measured["limit"] = time.strftime("%Y-%m-%d")
        results["limit"] = bench_limit(args.repeats)
    if "notebooks" in parts:
        print("notebooks", flush=True)
        measured["notebooks"] = time.strftime("%Y-%m-%d")
        results["notebooks"] = bench_notebooks()
    if "suite" in parts:
        print("pytest", flush=True)
        measured["suite"] = time.strftime("%Y-%m-%d")
        results["suite"] = bench_suite()
    write_results(results, args.output)
    (args.output.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    print(args.output.read_text())


if __name__ == "__main__":
    main()
