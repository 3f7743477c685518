"""Training-dynamics figures: accuracy, response length and reflection against training
step, one line per run name and domain; runs of the same name (the same stage under several
seeds, in different folders) make a mean line with a +-1 std band."""

from __future__ import annotations

from pathlib import Path

from harness.store import read_jsonl
from tasks.errors import VrbenchError

METRICS = {"acc": "accuracy", "length_mean": "mean response length (tokens)",
           "reflection_ratio": "reflection ratio"}
RATIOS = ("acc", "reflection_ratio")  # drawn on [0, 1]: a +-1 std band may pass the bounds


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display is needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plain(text: str) -> str:
    """A label matplotlib draws as it is ("$" would start a formula)."""
    return str(text).replace("$", r"\$")


def load_dynamics(runs: list[str | Path]) -> list[dict]:
    rows = []
    for run in runs:
        path = Path(run) / "dynamics.jsonl"
        if not path.is_file():
            raise VrbenchError(f"{run} has no dynamics.jsonl; pass training output directories.")
        rows += [r | {"run": Path(run).name} for r in read_jsonl(path)]
    if not rows:
        raise VrbenchError("the runs hold no evaluated checkpoints yet.")
    return rows


def plot_dynamics(runs: list[str | Path], out: str | Path, preset: str | None = None,
                  offsets: dict[str, int] | None = None) -> Path:
    """One PNG with a panel per metric. Rows are first averaged over the tasks of a domain
    (per run, seed and step), then the runs sharing a name give the band. `offsets` shifts
    the steps of runs by name (an arm started from another run's last step)."""
    plt = pyplot()
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame(load_dynamics(runs))
    df["step"] = df["step"] + df["run"].map(offsets or {}).fillna(0).astype(int)
    if preset is not None:
        df = df[df["preset"] == preset]
    per_domain = (df.groupby(["run", "seed", "step", "domain", "preset"], as_index=False)
                  [list(METRICS)].mean())
    per_domain["series"] = (per_domain["run"] + " / " + per_domain["domain"].str.upper()
                            ).map(plain)
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4))
    for i, (ax, (col, label)) in enumerate(zip(axes, METRICS.items(), strict=True)):
        sns.lineplot(data=per_domain, x="step", y=col, hue="series", style="preset",
                     errorbar="sd", marker="o", ax=ax, legend=i == len(METRICS) - 1)
        ax.set_ylabel(label)
        ax.set_xlabel("training step")
        if col in RATIOS:
            ax.set_ylim(-0.03, 1.03)
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
