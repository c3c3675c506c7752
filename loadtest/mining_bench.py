#!/usr/bin/env python3
"""Template mining accuracy on Loghub-2k, against the reference Drain.

    loadtest/mining_bench.py [--loghub DIR] [--faultline BIN] [--config FILE] [--check]

DIR (or $LOGHUB_DIR) is a checkout of github.com/logpai/loghub. Its licence is for research use:
it is read here at run time and never copied into this repository. For each of the 16
`*_2k.log` files, every line is split with its dataset's published log format (logpai/logparser's
benchmark settings) into its Content, the contents go to `faultline scan --format lines
--templates drain --assignments` with ONE configuration for all datasets (the embedded default,
or --config) and a pattern file whose only pattern matches every line, and the per-line
templates are scored against the dataset's ground truth (`*_2k.log_structured.csv`):

  GA   grouping accuracy: share of lines whose group is exactly a ground-truth group
  FGA  F1 of grouping: precision and recall of the groups found exactly
  PA   parsing accuracy: share of lines whose template is the ground-truth template (every
       placeholder read as <*>, whitespace ignored)

beside the reference Drain's GA (logparser db27223, its own per-dataset settings, measured
for issue 12), and mining throughput (lines per CPU-second of the scan: read, mask, mine).
--check exits 1 unless GA >= the reference on every dataset and the average GA >= 0.90.
Exit 77 (skipped) without the data.
"""
import argparse
import collections
import csv
import os
import re
import resource
import subprocess
import sys
import tempfile

# Dataset -> (log format, reference Drain GA). Formats as in logpai/logparser's benchmark
# settings (logparser/Drain/benchmark.py).
DATASETS = {
    "HDFS": (r"<Date> <Time> <Pid> <Level> <Component>: <Content>", 0.9975),
    "Hadoop": (r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>", 0.9475),
    "Spark": (r"<Date> <Time> <Level> <Component>: <Content>", 0.9200),
    "Zookeeper": (r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>", 0.9665),
    "BGL": (r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>", 0.9625),
    "HPC": (r"<LogId> <Node> <Component> <State> <Time> <Flag> <Content>", 0.8870),
    "Thunderbird": (r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>", 0.9550),
    "Windows": (r"<Date> <Time>, <Level>                  <Component>    <Content>", 0.9970),
    "Linux": (r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>", 0.6900),
    "Android": (r"<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>", 0.9110),
    "HealthApp": (r"<Time>\|<Component>\|<Pid>\|<Content>", 0.7800),
    "Apache": (r"\[<Time>\] \[<Level>\] <Content>", 1.0000),
    "Proxifier": (r"\[<Time>\] <Program> - <Content>", 0.5265),
    "OpenSSH": (r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>", 0.7875),
    "OpenStack": (r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>", 0.7325),
    "Mac": (r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>", 0.7865),
}
GA_FLOOR = 0.90


def format_regex(log_format):
    """logparser's generate_logformat_regex: fields become lazy groups, runs of spaces \\s+."""
    regex = ""
    for k, part in enumerate(re.split(r"(<[^<>]+>)", log_format)):
        if k % 2 == 0:
            regex += re.sub(" +", r"\\s+", part)
        else:
            regex += "(?P<%s>.*?)" % part.strip("<>")
    return re.compile("^" + regex + "$")


def contents(path, log_format):
    rx = format_regex(log_format)
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = rx.match(line.strip())
            if m:
                out.append(m.group("Content"))
    return out


def ground_truth(path):
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows], [r["EventTemplate"] for r in rows]


def normalise(template):
    t = re.sub(r"<[A-Z*]+>", "<*>", template)
    return re.sub(r"\s+", "", t)


def score(truth, found, truth_templates, found_templates):
    """GA, FGA and PA as in Loghub-2.0's evaluation (Jiang et al., 2024)."""
    n = len(truth)
    truth_groups = collections.defaultdict(set)
    found_groups = collections.defaultdict(set)
    for i, (t, f) in enumerate(zip(truth, found)):
        truth_groups[t].add(i)
        found_groups[f].add(i)
    correct_lines = 0
    correct_groups = 0
    for members in found_groups.values():
        first = truth[next(iter(members))]
        if truth_groups[first] == members:
            correct_lines += len(members)
            correct_groups += 1
    ga = correct_lines / n
    precision = correct_groups / len(found_groups)
    recall = correct_groups / len(truth_groups)
    fga = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    pa = sum(normalise(a) == normalise(b) for a, b in zip(truth_templates, found_templates)) / n
    return ga, fga, pa


def write_lines(path, lines, times=1):
    """The contents as a `--format lines` input (a content never spans lines)."""
    block = "".join(line.replace("\n", " ") + "\n" for line in lines)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(times):
            f.write(block)
    return path


def scan_cpu(binary, config, work, path, extra=()):
    """Runs `faultline scan --templates drain` on `path` with the match-everything pattern file
    (one mining thread); returns its CPU seconds (user + system)."""
    patterns = os.path.join(work, "any.tsv")
    if not os.path.exists(patterns):
        with open(patterns, "w") as f:
            f.write("any\terror\t.\n")
    cmd = [binary, "scan", "--quiet", "--format", "lines", "--templates", "drain", "--patterns", patterns,
           "--threads", "1", *extra] + (["--config", config] if config else []) + [path]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_faultline(binary, config, lines, work):
    out = os.path.join(work, "assignments.tsv")
    cpu = scan_cpu(binary, config, work, write_lines(os.path.join(work, "content.log"), lines),
                   ("--assignments", out))
    ids, templates = [], []
    with open(out, encoding="utf-8", errors="replace") as f:
        for line in f:
            tid, _, template = line.rstrip("\n").partition("\t")
            ids.append(tid)
            templates.append(template)
    return ids, templates, cpu


def throughput(binary, config, lines, work, target=800_000):
    """Lines per CPU-second of one scan over every dataset's contents, repeated to `target` lines."""
    times = max(1, target // max(1, len(lines)))
    cpu = scan_cpu(binary, config, work, write_lines(os.path.join(work, "all.log"), lines, times))
    return times * len(lines) / cpu, times * len(lines)


def distinct_rate(binary, config, lines, work, runs=5):
    """Lines per CPU-second over the 16 sets once (every line distinct as a set has it): the
    median CPU time of a scan of them, less the median of a scan of one line (the start-up)."""
    src = write_lines(os.path.join(work, "once.log"), lines)
    one = write_lines(os.path.join(work, "one.log"), lines[:1])
    full = sorted(scan_cpu(binary, config, work, src) for _ in range(runs))[runs // 2]
    start = sorted(scan_cpu(binary, config, work, one) for _ in range(runs))[runs // 2]
    return len(lines) / max(full - start, 1e-3), full, start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loghub", default=os.environ.get("LOGHUB_DIR", ""))
    ap.add_argument("--faultline", default=os.environ.get("FAULTLINE", "build/release/server/faultline"))
    ap.add_argument("--config", default="")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--check", action="store_true", help="fail unless the issue's targets are met")
    ap.add_argument("--floors", default="", help="FILE of 'dataset GA' lines (and 'average GA', "
                    "'throughput LINES_PER_CPU_S'): fail when a figure falls below its floor")
    ap.add_argument("--show", default="", help="DATASET: print the found groups that are not exact")
    a = ap.parse_args()
    if not a.loghub or not os.path.isdir(a.loghub):
        print("mining_bench: skipped: set LOGHUB_DIR (or --loghub) to a checkout of logpai/loghub", file=sys.stderr)
        return 77
    print(f"{'dataset':<12} {'lines':>6} {'GA':>7} {'Drain GA':>9} {'FGA':>7} {'PA':>7}")
    total_lines = 0
    total_cpu = 0.0
    sums = [0.0, 0.0, 0.0, 0.0]
    below = []
    names = [d for d in a.datasets.split(",") if d]
    all_lines = []
    found_ga = {}
    with tempfile.TemporaryDirectory(prefix="faultline-mining-") as work:
        for name in names:
            log_format, ref = DATASETS[name]
            base = os.path.join(a.loghub, name, f"{name}_2k.log")
            lines = contents(base, log_format)
            all_lines.extend(lines)
            gt_content, gt_ids, gt_templates = ground_truth(base + "_structured.csv")
            if len(lines) != len(gt_ids):
                print(f"{name}: {len(lines)} lines split, the ground truth has {len(gt_ids)}", file=sys.stderr)
                return 1
            mismatched = sum(x.strip() != y.strip() for x, y in zip(lines, gt_content))
            if mismatched:
                print(f"{name}: {mismatched} contents differ from the ground truth's Content", file=sys.stderr)
            ids, templates, cpu = run_faultline(a.faultline, a.config, lines, work)
            if len(ids) != len(lines):
                print(f"{name}: {len(ids)} assignments for {len(lines)} lines", file=sys.stderr)
                return 1
            ga, fga, pa = score(gt_ids, ids, gt_templates, templates)
            total_lines += len(lines)
            total_cpu += cpu
            for k, v in enumerate((ga, ref, fga, pa)):
                sums[k] += v
            found_ga[name] = ga
            if ga < ref:
                below.append(name)
            mark = "" if ga >= ref else "  < Drain"
            print(f"{name:<12} {len(lines):>6} {ga:>7.4f} {ref:>9.4f} {fga:>7.4f} {pa:>7.4f}{mark}")
            if a.show == name:
                show(gt_ids, ids, lines, templates)
        rate, big = throughput(a.faultline, a.config, all_lines, work)
        once, once_cpu, start_cpu = distinct_rate(a.faultline, a.config, all_lines, work)
    k = len(names)
    print(f"{'average':<12} {total_lines:>6} {sums[0] / k:>7.4f} {sums[1] / k:>9.4f} {sums[2] / k:>7.4f} {sums[3] / k:>7.4f}")
    print(f"throughput: {rate:,.0f} lines/CPU-s (the {len(all_lines)} lines {big // len(all_lines)} times over, "
          f"one scan --threads 1 without --assignments; {total_lines / total_cpu:,.0f} lines/CPU-s over the "
          f"16 small scans above, start-ups included)")
    print(f"distinct lines: {once:,.0f} lines/CPU-s (the {len(all_lines)} lines once: {once_cpu:.3f} CPU-s, "
          f"less a one-line scan's {start_cpu:.3f} CPU-s of start-up; medians of 5)")
    print(f"below the reference Drain: {', '.join(below) if below else 'none'}")
    if a.floors:
        figures = dict(found_ga)
        figures["average"] = sums[0] / k
        figures["throughput"] = rate
        failed = []
        with open(a.floors) as f:
            for line in f:
                line = line.split("#")[0].split()
                if len(line) == 2 and line[0] in figures and round(figures[line[0]], 4) < float(line[1]):
                    failed.append(f"{line[0]} {figures[line[0]]:.4f} < floor {line[1]}")
        if failed:
            print("FAIL: below the floors of " + a.floors + ": " + "; ".join(failed), file=sys.stderr)
            return 1
        print(f"floors of {a.floors}: met")
    if a.check and (below or sums[0] / k < GA_FLOOR):
        print(f"FAIL: GA must be >= Drain on every dataset and >= {GA_FLOOR} on average", file=sys.stderr)
        return 1
    return 0


def show(truth, found, lines, templates):
    by_found = collections.defaultdict(list)
    for i, f in enumerate(found):
        by_found[f].append(i)
    truth_sizes = collections.Counter(truth)
    for f, members in sorted(by_found.items(), key=lambda kv: -len(kv[1])):
        labels = collections.Counter(truth[i] for i in members)
        if len(labels) == 1 and truth_sizes[truth[members[0]]] == len(members):
            continue
        print(f"  found {len(members)} lines as: {templates[members[0]]}")
        for label, count in labels.most_common(4):
            example = next(lines[i] for i in members if truth[i] == label)
            print(f"    {count:>5} of {truth_sizes[label]:>5} {label}: {example[:140]}")


if __name__ == "__main__":
    sys.exit(main())
