#!/usr/bin/env python3
"""pairs.py: paired, alternating wall-time runs of commands; used by bench.sh.

    pairs.py RUNS WARMUP ORDER NAME=CMD [NAME=CMD ...]

Each CMD is a command line split on spaces (no quoting), run with stdin, stdout and stderr on
/dev/null; a non-zero exit aborts the measurement. ORDER is
  alternate  round i runs every command once, the starting one rotating each round, so that each
             command follows each other one equally often (a cost one runtime leaves behind for
             the next, as crun's cgroup2 mount leaves an RCU grace period, falls on both);
  blocks     every command RUNS times back to back (what hyperfine does), after its own warmup.
Prints one JSON object: for each NAME the median and the 25th/75th percentiles in ms, and for
each NAME after the first the ratio to the first: in alternate order the median of the per-round
ratios and their 10th-90th percentile spread; in block order the ratio of the medians.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def once(argv):
    t = time.perf_counter_ns()
    rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    dt = (time.perf_counter_ns() - t) / 1e6
    if rc != 0:
        sys.exit("pairs.py: %s exited with %d" % (" ".join(argv), rc))
    return dt


def main():
    runs, warmup, order = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cmds = []
    for a in sys.argv[4:]:
        name, cmd = a.split("=", 1)
        cmds.append((name, cmd.split()))
    times = {n: [] for n, _ in cmds}
    if order == "alternate":
        for _ in range(warmup):
            for _, argv in cmds:
                once(argv)
        for i in range(runs):
            k = i % len(cmds)
            for name, argv in cmds[k:] + cmds[:k]:
                times[name].append(once(argv))
    elif order == "blocks":
        for name, argv in cmds:
            for _ in range(warmup):
                once(argv)
            for _ in range(runs):
                times[name].append(once(argv))
    else:
        sys.exit("pairs.py: ORDER is alternate or blocks")
    base = cmds[0][0]
    out = {}
    for name, _ in cmds:
        t = times[name]
        r = {"median": statistics.median(t), "p25": pct(t, 0.25), "p75": pct(t, 0.75)}
        if name != base:
            if order == "alternate":
                ratios = [a / b for a, b in zip(times[base], t)]
                r["ratio"] = statistics.median(ratios)
                r["ratio_p10"], r["ratio_p90"] = pct(ratios, 0.1), pct(ratios, 0.9)
            else:
                r["ratio"] = statistics.median(times[base]) / statistics.median(t)
        out[name] = r
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
