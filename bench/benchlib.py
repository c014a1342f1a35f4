"""bench/benchlib.py -- what every bench script shares: min/median/max of a series, and the
goal rows of issue-style performance targets.

A goal row compares one figure of janebot with its anchor measured in the same run on
the same machine (raw bubblewrap, a direct connection, a Node bot, an instant-ack client)
and says whether the target ratio or margin is met. Each script prints its own rows; when
BENCH_RESULTS names a file, the rows are also appended there as JSON lines, and
bench/summary.py prints them all as one table at the end of `make bench`."""
import json
import os
import statistics
import subprocess


def remove_sandboxes(janebot, env, cwd=None):
    """Remove every sandbox of the state dir in env with janebot's own `sandbox rm`: as root
    a home is a mounted disk image, which deleting the bench's temporary folder would leave
    mounted (and every later sandbox's bubblewrap would read it in the mount table)."""
    run = dict(env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
               timeout=60)
    try:
        listing = subprocess.run([janebot, "sandbox", "list"], **run)
        for fields in (line.split() for line in listing.stdout.splitlines()[1:]):
            if fields:
                subprocess.run([janebot, "sandbox", "rm", fields[0]], **run)
    except (OSError, subprocess.SubprocessError):
        pass


def spread(xs):
    """(min, median, max) of a non-empty series of numbers."""
    xs = sorted(xs)
    return (xs[0], statistics.median(xs), xs[-1])


def fmt_spread(s, digits=2):
    if s is None:
        return "n/a"
    return "/".join("%.*f" % (digits, v) for v in s)


class Goal:
    """One target: janebot's figure against its anchor.

    kind "ratio_max": janebot median / anchor median must be <= limit
    kind "ratio_min": janebot median / anchor median must be >= limit
    kind "margin_max": janebot median - anchor median must be <= limit (same unit)
    kind "max":        janebot median must be <= limit (anchor shown for context)
    """

    def __init__(self, figure, unit, ours, anchor_name, anchor, kind, limit, note=""):
        self.figure, self.unit, self.ours = figure, unit, ours
        self.anchor_name, self.anchor = anchor_name, anchor
        self.kind, self.limit, self.note = kind, limit, note

    def value(self):
        """The compared quantity (a ratio or a margin), or None when a side is missing."""
        if self.ours is None:
            return None
        if self.kind == "max":
            return self.ours[1]
        if self.anchor is None:
            return None
        if self.kind == "margin_max":
            return self.ours[1] - self.anchor[1]
        if self.anchor[1] == 0:
            return None
        return self.ours[1] / self.anchor[1]

    def met(self):
        v = self.value()
        if v is None:
            return None
        if self.kind == "ratio_min":
            return v >= self.limit
        return v <= self.limit

    def target(self):
        return {"ratio_max": "ratio <= %g", "ratio_min": "ratio >= %g",
                "margin_max": "margin <= %g " + self.unit,
                "max": "<= %g " + self.unit}[self.kind] % self.limit

    def row(self):
        v = self.value()
        met = self.met()
        if v is None:
            shown = "n/a"
        elif self.kind in ("ratio_max", "ratio_min"):
            shown = "%.2fx" % v
        else:
            shown = "%.2f %s" % (v, self.unit)
        return "| %s | %s | %s %s | %s | %s | %s |" % (
            self.figure, fmt_spread(self.ours), self.anchor_name or "-",
            fmt_spread(self.anchor), shown, self.target(),
            "n/a" if met is None else ("yes" if met else "NO"))

    def as_json(self):
        return {"figure": self.figure, "unit": self.unit, "ours": self.ours,
                "anchor_name": self.anchor_name, "anchor": self.anchor, "kind": self.kind,
                "limit": self.limit, "note": self.note}


HEADER = ("| figure (min/median/max) | janebot | anchor (min/median/max) | compared | "
          "target | met |\n|---|---|---|---|---|---|")


def report(title, goals):
    """Print the goal rows of one script, and append them to $BENCH_RESULTS if set."""
    print()
    print(title)
    print()
    print(HEADER)
    for g in goals:
        print(g.row())
    notes = [g for g in goals if g.note]
    for g in notes:
        print("- %s: %s" % (g.figure, g.note))
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a") as f:
            for g in goals:
                f.write(json.dumps(g.as_json()) + "\n")


def load(path):
    """Goals appended to a results file by report()."""
    goals = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            goals.append(Goal(d["figure"], d["unit"], d["ours"], d["anchor_name"],
                              d["anchor"], d["kind"], d["limit"], d.get("note", "")))
    return goals
