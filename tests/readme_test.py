#!/usr/bin/python3
"""README as a test: run every console block of README.rst and check it.

usage: MESHBUS_TOOL=build/debug/tools/meshbus tests/readme_test.py README.rst
       [--repo DIR]  the repository whose entries a block sees (default:
                     the README's directory)
       [--list]      print the commands parsed, without running them

What it runs: every ``.. code-block:: console`` block. In a block, a line
starting with ``$ `` is a command (a line ending with ``\\`` continues on
the next line); the lines after it up to the next ``$ `` line are its
expected stdout, compared line by line after stripping trailing spaces. An
expected line that is exactly ``...`` matches any number of lines; no
expected lines: the output is not checked. ``[exit N]`` among them: the
command must exit N, else it must exit 0. A command ending with `` &`` runs
in the background: its output is not checked, the block waits for it at its
end (within the block's bound) and kills it, by process group, if it is
still running then, which fails the block.

How: each command runs with bash in the block's own fresh temporary
directory, whose top level holds a symlink to every top-level entry of the
repository (``build/...``, ``examples/...`` work), with ``meshbus`` on PATH
(a symlink to $MESHBUS_TOOL) and MESHBUS_CLUSTER set to a value of this
block alone, so blocks never meet nodes of other tests (the commands stay
literal). Each command is its own bash: state is shared through files in
the directory, not shell variables. A block is bounded in time
(MESHBUS_README_TIMEOUT seconds, default 120).

Blocks of other kinds are not run: ``sh`` (install and build, run by CI
itself), ``c``... But a ``meshbus`` command in any block other than a
console block (a literal ``::`` block, a ``bash`` block) fails the test:
it would be a documented command that nothing runs.

Prints PASS or FAIL per block (with the failing command, its exit status,
its output and what was expected); exits 0 when every block passed, 1 when
one failed, 77 when there is nothing to run or no tool.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

COMMAND_RE = re.compile(r'(?:^|[|;&(]\s*|\$\s+)meshbus(?:\s|$)')
EXIT_RE = re.compile(r'^\[exit (\d+)\]$')


def literal_blocks(lines):
    """Yield (kind, first line number, content lines) for every code-block
    directive and every literal (::) block of an RST text."""
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r'^(\s*)\.\. code-block::\s*(\S*)\s*$', line)
        literal = (not directive and line.rstrip().endswith('::')
                   and not line.lstrip().startswith('..'))
        if not directive and not literal:
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        kind = directive.group(2) if directive else '::'
        j = i + 1
        while directive and j < len(lines) and re.match(r'^\s+:\w[\w-]*:', lines[j]):
            j += 1                          # directive options
        content = []
        start = None
        while j < len(lines):
            text = lines[j]
            if text.strip() == '':
                if start is not None:
                    content.append('')
                j += 1
                continue
            if len(text) - len(text.lstrip()) <= indent:
                break
            if start is None:
                start = j
            content.append(text)
            j += 1
        while content and content[-1] == '':
            content.pop()
        if content:
            cut = min(len(t) - len(t.lstrip()) for t in content if t.strip())
            yield kind, start + 1, [t[cut:] for t in content]
        i = j


def parse_console(content, first_line):
    """The commands of a console block: dicts with line, command,
    background, expected (lines) and exit (status wanted)."""
    commands = []
    k = 0
    while k < len(content):
        line = content[k]
        if not line.startswith('$ '):
            if commands:
                commands[-1]['expected'].append(line)
            k += 1
            continue
        command = line[2:]
        number = first_line + k
        while command.endswith('\\') and k + 1 < len(content):
            k += 1
            command += '\n' + content[k]
        k += 1
        background = command.rstrip().endswith(' &')
        if background:
            command = command.rstrip()[:-2].rstrip()
        commands.append({'line': number, 'command': command, 'background': background,
                         'expected': [], 'exit': 0})
    for c in commands:
        expected = [e.rstrip() for e in c['expected']]
        while expected and expected[-1] == '':
            expected.pop()
        for e in list(expected):
            m = EXIT_RE.match(e)
            if m:
                c['exit'] = int(m.group(1))
                expected.remove(e)
        c['expected'] = expected
    return commands


def output_matches(expected, actual):
    """Line by line; '...' matches any number of lines (dynamic programming:
    no recursion, however long the output)."""
    n = len(actual)
    reach = [False] * (n + 1)       # reach[j]: expected[:i] matches actual[:j]
    reach[0] = True
    for e in expected:
        new = [False] * (n + 1)
        if e == '...':
            seen = False
            for j in range(n + 1):
                seen = seen or reach[j]
                new[j] = seen
        else:
            for j in range(n):
                new[j + 1] = reach[j] and actual[j] == e
        reach = new
    return reach[n]


def as_lines(data):
    text = data.decode('utf-8', errors='backslashreplace')
    lines = [line.rstrip() for line in text.split('\n')]
    if lines and lines[-1] == '':
        lines.pop()
    return lines


def kill_group(proc):
    """End a process we started, and what it started, by its process group
    (it leads its own: start_new_session)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


def indent(text, prefix='    | '):
    lines = text.split('\n') if text else ['(nothing)']
    if len(lines) > 40:
        lines = lines[:20] + ['... (%d lines)' % (len(lines) - 40)] + lines[-20:]
    return '\n'.join(prefix + line for line in lines)


def run_block(number, line, commands, repo, tool, bound):
    """Run one console block; returns a failure text or None."""
    work = tempfile.mkdtemp(prefix='readme-block-')
    tools = tempfile.mkdtemp(prefix='readme-bin-')
    background = []
    try:
        for entry in os.listdir(repo):
            os.symlink(os.path.join(repo, entry), os.path.join(work, entry))
        os.symlink(tool, os.path.join(tools, 'meshbus'))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('MESHBUS_') or k in ('MESHBUS_TOOL', 'MESHBUS_SRC')}
        env['PATH'] = tools + os.pathsep + env.get('PATH', '/usr/bin:/bin')
        env['MESHBUS_CLUSTER'] = 'readme-%d-%d' % (os.getpid(), number)
        deadline = time.monotonic() + bound
        for c in commands:
            if c['background']:
                log = os.path.join(tools, 'bg%d' % len(background))
                with open(log + '.out', 'wb') as out, open(log + '.err', 'wb') as err:
                    proc = subprocess.Popen(['bash', '-c', c['command']], cwd=work, env=env,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                            start_new_session=True)
                background.append((c, proc, log))
                continue
            proc = subprocess.Popen(['bash', '-c', c['command']], cwd=work, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                kill_group(proc)
                out, err = proc.communicate()
                return ('line %d: still running at the block\'s %g s bound (killed)\n'
                        '  $ %s\n  stdout:\n%s\n  stderr:\n%s'
                        % (c['line'], bound, c['command'], indent(out.decode(errors='replace')),
                           indent(err.decode(errors='replace'))))
            actual = as_lines(out)
            problems = []
            if proc.returncode != c['exit']:
                problems.append('exit %d, expected %d' % (proc.returncode, c['exit']))
            if c['expected'] and not output_matches(c['expected'], actual):
                problems.append('stdout differs')
            if problems:
                return ('line %d: %s\n  $ %s\n  stdout:\n%s\n  expected:\n%s\n  stderr:\n%s'
                        % (c['line'], ', '.join(problems), c['command'], indent('\n'.join(actual)),
                           indent('\n'.join(c['expected'])) if c['expected'] else '    (not checked)',
                           indent(err.decode(errors='replace').rstrip('\n'))))
        for c, proc, log in background:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                kill_group(proc)
                return ('line %d: background command still running at the end of the block '
                        '(%g s bound; killed)\n  $ %s &\n  stderr:\n%s'
                        % (c['line'], bound, c['command'], indent(open(log + '.err').read().rstrip('\n'))))
            if proc.returncode != c['exit']:
                return ('line %d: background command exit %d, expected %d\n  $ %s &\n  stderr:\n%s'
                        % (c['line'], proc.returncode, c['exit'], c['command'],
                           indent(open(log + '.err').read().rstrip('\n'))))
        return None
    finally:
        for c, proc, log in background:
            if proc.poll() is None:
                kill_group(proc)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tools, ignore_errors=True)


def main(argv):
    args = [a for a in argv[1:] if a != '--list']
    repo = None
    if '--repo' in args:
        at = args.index('--repo')
        if at + 1 >= len(args):
            print(__doc__.split('\n\n')[1])
            return 2
        repo = os.path.abspath(args[at + 1])
        del args[at:at + 2]
    if len(args) != 1:
        print(__doc__.split('\n\n')[1])
        return 2
    readme = os.path.abspath(args[0])
    repo = repo or os.path.dirname(readme)
    with open(readme, encoding='utf-8') as f:
        lines = f.read().split('\n')
    blocks = []
    unrun = []
    for kind, first, content in literal_blocks(lines):
        if kind == 'console':
            blocks.append((first, parse_console(content, first)))
        elif any(COMMAND_RE.search(t.strip()) for t in content):
            unrun.append((kind, first))
    if '--list' in argv:
        for n, (first, commands) in enumerate(blocks, 1):
            print('block %d (line %d)' % (n, first))
            for c in commands:
                print('  %d: %s%s  [exit %d] %d expected lines'
                      % (c['line'], c['command'], ' &' if c['background'] else '', c['exit'],
                         len(c['expected'])))
        for kind, first in unrun:
            print('not run: %s block at line %d' % (kind, first))
        return 0
    tool = os.environ.get('MESHBUS_TOOL')
    if not tool or not os.access(tool, os.X_OK):
        print('SKIP: set MESHBUS_TOOL to the built meshbus tool')
        return 77
    tool = os.path.abspath(tool)
    bound = float(os.environ.get('MESHBUS_README_TIMEOUT', '120'))
    if not blocks and not unrun:
        print('SKIP: no console block in %s' % args[0])
        return 77
    failed = 0
    name = os.path.basename(readme)
    for kind, first in unrun:
        print('FAIL %s:%d: a %s block with meshbus commands that nothing runs '
              '(make it a ".. code-block:: console" block with "$ " prompts)' % (name, first, kind))
        failed += 1
    for n, (first, commands) in enumerate(blocks, 1):
        if not commands:
            print('FAIL block %d (%s:%d): a console block without a "$ " command' % (n, name, first))
            failed += 1
            continue
        started = time.monotonic()
        why = run_block(n, first, commands, repo, tool, bound)
        took = time.monotonic() - started
        if why:
            print('FAIL block %d (%s:%d, %.1f s): %s' % (n, name, first, took, why))
            failed += 1
        else:
            print('PASS block %d (%s:%d, %d commands, %.1f s)' % (n, name, first, len(commands), took))
        sys.stdout.flush()
    print('%s: %d blocks, %d failed' % (name, len(blocks) + len(unrun), failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
