"""Training-dynamics figures: accuracy, response length and reflection against training
step, one line per run name and domain; runs of the same name (the same stage under several
seeds, in different folders) make a mean line with a +-1 std band."""

from __future__ import annotations

from pathlib import Path

from harness.runs.metrics import TRACKED
from harness.runs.store import no_link, read_jsonl
from vrbench.errors import VrbenchError

METRICS = {m.key: m.label for m in TRACKED if m.plotted}  # one panel each
RATIOS = {m.key for m in TRACKED if m.ratio}  # drawn on [0, 1]: a +-1 std band may pass them


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display is needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out: str | Path) -> Path:
    """Lay the figure out, write it as a PNG (creating its folder; a legend placed outside
    the axes included) and free it."""
    fig.tight_layout()
    out = no_link(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return out


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


REWARD_WINDOW = 5  # training steps per point of the reward panel


def load_rewards(runs: list[str | Path]) -> list[dict]:
    """The RL runs' training reward (train_log.jsonl), as the mean of each window of
    `REWARD_WINDOW` steps (the prompts change every step: one step's reward is mostly its
    prompts' difficulty)."""
    rows = []
    for run in runs:
        log = [r for r in read_jsonl(Path(run) / "train_log.jsonl") if "reward_mean" in r]
        seed = next((r["seed"] for r in read_jsonl(Path(run) / "dynamics.jsonl")), 0)
        for i in range(0, len(log) - REWARD_WINDOW + 1, REWARD_WINDOW):
            part = log[i:i + REWARD_WINDOW]
            rows.append({"run": Path(run).name, "seed": seed, "step": part[-1]["step"],
                         "reward": sum(r["reward_mean"] for r in part) / len(part)})
    return rows


def plot_dynamics(runs: list[str | Path], out: str | Path, preset: str | None = None) -> Path:
    """One PNG with a panel per metric, and one of the RL runs' training reward where there
    are any. Rows are first averaged over the tasks of a domain (per run, seed and step), then
    the runs sharing a name give the band."""
    plt = pyplot()
    import pandas as pd
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    df = pd.DataFrame(load_dynamics(runs))
    if preset is not None:
        df = df[df["preset"] == preset]
    per_domain = (df.groupby(["run", "seed", "step", "domain", "preset"], as_index=False)
                  [list(METRICS)].mean())
    per_domain["series"] = (per_domain["run"] + " / " + per_domain["domain"].str.upper()
                            ).map(plain)
    rewards = pd.DataFrame(load_rewards(runs))
    sns.set_theme(style="whitegrid")
    n = len(METRICS) + (not rewards.empty)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4))
    if not rewards.empty:  # the first panel
        sns.lineplot(data=rewards.assign(run=rewards["run"].map(plain)), x="step", y="reward",
                     hue="run", errorbar="sd", marker=".", ax=axes[0])
        axes[0].set_ylabel(f"RL reward ({REWARD_WINDOW}-step mean)")
        axes[0].set_xlabel("training step")
        axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].legend(fontsize=7, loc="lower right")
    for i, (ax, (col, label)) in enumerate(zip(axes[n - len(METRICS):], METRICS.items(),
                                               strict=True)):
        sns.lineplot(data=per_domain, x="step", y=col, hue="series", style="preset",
                     errorbar="sd", marker="o", ax=ax, legend=i == len(METRICS) - 1)
        ax.set_ylabel(label)
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if col in RATIOS:
            ax.set_ylim(-0.03, 1.03)
    sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return save(fig, out)


def plot_pareto(points: list[dict], out: str | Path) -> Path:
    """Where each arm checkpoint lands against its start (the origin): ID gain against OOD
    change, ID gain against KL to the start, and OOD change against that KL. `points` hold
    arm, trainer, lr, step, seed, id_gain, ood_change (points) and kl (nats); each arm and
    learning rate is a path from the origin through its steps, at the mean over seeds, with
    the seeds' own points faint behind it."""
    plt = pyplot()
    import pandas as pd
    import seaborn as sns

    if not points:
        raise VrbenchError("no arm checkpoint has been scored yet: nothing to plot.")
    df = pd.DataFrame(points)
    df["arm"] = (df["trainer"].str.upper() + " lr " + df["lr"].map("{:g}".format)).map(plain)
    panels = (("id_gain", "ood_change", "ID gain (points)", "OOD change (points)",
               "what ID gain costs OOD"),
              ("kl", "id_gain", "KL to the start (nats/response)", "ID gain (points)",
               "ID gain against the distance moved"),
              ("kl", "ood_change", "KL to the start (nats/response)", "OOD change (points)",
               "OOD change against the distance moved"))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2))
    palette = dict(zip(sorted(df["arm"].unique()), sns.color_palette(n_colors=df["arm"].nunique()),
                       strict=True))
    for ax, (x, y, xlabel, ylabel, title) in zip(axes, panels, strict=True):
        data = df.dropna(subset=[x, y])
        ax.scatter(data[x], data[y], c=[palette[a] for a in data["arm"]], alpha=0.25, s=18)
        means = data.groupby(["arm", "step"], as_index=False)[[x, y]].mean()
        for arm, part in means.groupby("arm"):
            part = part.sort_values("step")
            ax.plot([0, *part[x]], [0, *part[y]], marker="o", color=palette[arm], label=arm)
            last = part.iloc[-1]  # one label a path, at its end: the labels never pile up
            ax.annotate(f"{int(last['step'])}", (last[x], last[y]), fontsize=7,
                        color=palette[arm], textcoords="offset points", xytext=(4, 3))
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                    title="arm (from the origin, its\ncheckpoints in order;\n"
                          "number: the last step)")
    return save(fig, out)


def shift_curves(results: dict[str, dict]) -> list[dict]:
    """Accuracy against shift distance from a run's per-task results: one row per
    single-dial shift (source, dial, distance, acc, baseline), and distance 0 (the source
    itself) for each source the run also scored."""
    from tasks import shifts
    rows = []
    for task, r in results.items():
        parsed = shifts.parse(task)
        if parsed and len(parsed[1]) == 1 and r.get("acc") is not None:
            (dial, distance), = parsed[1]
            rows.append({"source": parsed[0], "dial": dial, "distance": distance,
                         "acc": r["acc"], "baseline": r.get("majority_baseline")})
    for source, dial in {(r["source"], r["dial"]) for r in rows}:
        if results.get(source, {}).get("acc") is not None:
            rows.append({"source": source, "dial": dial, "distance": 0,
                         "acc": results[source]["acc"],
                         "baseline": results[source].get("majority_baseline")})
    return sorted(rows, key=lambda r: (r["source"], r["dial"], r["distance"]))


def plot_shift_curves(rows: list[dict], out: str | Path) -> Path:
    """One panel per source task: accuracy against distance, a line per dial; the dashed
    line is the most-common-answer baseline (mean over the panel's tasks)."""
    plt = pyplot()
    import pandas as pd
    import seaborn as sns
    from matplotlib.lines import Line2D

    df = pd.DataFrame(rows)
    sources = sorted(df["source"].unique())
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(sources), figsize=(4.6 * len(sources), 4), squeeze=False)
    for i, (ax, source) in enumerate(zip(axes[0], sources, strict=True)):
        part = df[df["source"] == source]
        sns.lineplot(data=part, x="distance", y="acc", hue="dial", marker="o", ax=ax,
                     legend=i == len(sources) - 1)
        if part["baseline"].notna().any():
            ax.axhline(part["baseline"].mean(), color="grey", ls="--", lw=1)
        ax.set_title(plain(source))
        ax.set_xticks(sorted(part["distance"].unique()))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("shift distance (0: the source task)")
        ax.set_ylabel("accuracy")
    last = axes[0][-1]
    handles, labels = last.get_legend_handles_labels()
    if df["baseline"].notna().any():  # what the dashed lines are
        handles.append(Line2D([], [], color="grey", ls="--", lw=1))
        labels.append("always the most common\nanswer (mean over the\npanel's tasks)")
    last.legend(handles, labels, title="dial", loc="upper left", bbox_to_anchor=(1.02, 1),
                frameon=False)
    return save(fig, out)
