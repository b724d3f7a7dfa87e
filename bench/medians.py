#!/usr/bin/env python3
"""Run a `meshbus bench ... --json` command N times and print the medians.

usage: bench/medians.py N COMMAND...   (COMMAND must print one JSON object)

Prints every run's ratio, then one JSON object with the median of each
numeric field over the runs (and "runs": N), so a closing note can quote
medians of several runs of one command.
"""
import json
import statistics
import subprocess
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
runs = int(sys.argv[1])
results = []
for _ in range(runs):
    out = subprocess.run(sys.argv[2:], capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith('{')), None)
    if out.returncode != 0 or line is None:
        sys.exit('run failed (exit %d): %s' % (out.returncode, out.stderr.strip()))
    results.append(json.loads(line))
print('ratios:', ' '.join(str(r.get('ratio')) for r in results), file=sys.stderr)
medians = {'runs': runs}
for key, value in results[0].items():
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        medians[key] = statistics.median(r[key] for r in results)
    else:
        medians[key] = value
print(json.dumps(medians))
