#!/usr/bin/env python3
"""Medians of several runs of a benchmark that prints one JSON object.

usage: bench/medians.py N COMMAND...
       bench/medians.py --table ROWS DIR

The first form runs COMMAND N times, prints every run's ratio on stderr,
then one JSON object with the median of each numeric field over the runs
(and "runs": N), so a closing note can quote medians of several runs.

The second form is what bench/all.sh calls once its runs are done: DIR
holds ID.jsonl, the JSON objects of every run of benchmark ID (one a
line, in the order run), and ROWS one table row a line,

    label|ID|ratio key|meshbus key|raw key|goal

where goal is ">= X", "<= X" or "-". It prints a Markdown table: the
median of each key over the runs, the range of the ratio and whether the
median meets the goal.
"""
import json
import os
import statistics
import subprocess
import sys


def medians(results):
    out = {'runs': len(results)}
    for key, value in results[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in results if key in r)
        else:
            out[key] = value
    return out


def run(runs, command):
    results = []
    for _ in range(runs):
        out = subprocess.run(command, capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith('{')), None)
        if out.returncode != 0 or line is None:
            sys.exit('run failed (exit %d): %s' % (out.returncode, out.stderr.strip()))
        results.append(json.loads(line))
    print('ratios:', ' '.join(str(r.get('ratio')) for r in results), file=sys.stderr)
    print(json.dumps(medians(results)))


def figure(value):
    if value is None:
        return '-'
    return '%.3f' % value if abs(value) < 100 else '{:,.0f}'.format(value).replace(',', ' ')


def table(rows_path, folder):
    print('| benchmark | meshbus | other side | ratio (median) | runs | range | goal | met |')
    print('|---|---|---|---|---|---|---|---|')
    for line in open(rows_path):
        if not line.strip() or line.startswith('#'):
            continue
        label, ident, ratio_key, mesh_key, raw_key, goal = [f.strip() for f in line.split('|')]
        path = os.path.join(folder, ident + '.jsonl')
        results = []
        if os.path.exists(path):
            results = [json.loads(l) for l in open(path) if l.startswith('{')]
        failed = os.path.exists(path + '.failed') and int(open(path + '.failed').read() or 0)
        if not results:
            print('| %s | - | - | no run completed | 0 | | %s | |' % (label, goal))
            continue
        med = medians(results)
        ratios = [r[ratio_key] for r in results if ratio_key in r]
        met = ''
        if goal != '-' and ratio_key in med:
            op, value = goal.split()
            met = 'yes' if (med[ratio_key] >= float(value) if op == '>='
                            else med[ratio_key] <= float(value)) else '**no**'
        runs = '%d%s' % (len(results), ' (+%d failed)' % failed if failed else '')
        print('| %s | %s | %s | **%s** | %s | %s-%s | %s | %s |' % (
            label, figure(med.get(mesh_key)), figure(med.get(raw_key)),
            figure(med.get(ratio_key)), runs, figure(min(ratios)), figure(max(ratios)),
            goal, met))


if len(sys.argv) == 4 and sys.argv[1] == '--table':
    table(sys.argv[2], sys.argv[3])
elif len(sys.argv) >= 3 and sys.argv[1].isdigit():
    run(int(sys.argv[1]), sys.argv[2:])
else:
    sys.exit(__doc__)
