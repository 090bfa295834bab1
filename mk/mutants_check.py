#!/usr/bin/python3
"""mutants_check.py — the mutant list (tests/mutants/*.md) is data about the
code: every mutant's `find` text must occur exactly once in its file, or
`make mutants` refuses to run. This check is cheap, so `make test` runs it
(suite mutants_list) and a change that moves a mutated line fails at once,
not at the next `make mutants`. Usage: mk/mutants_check.py [ROOT]; exit 0
when all are in step, 1 with one line per mutant that is not."""
import glob, os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
esc = {'n': '\n', 't': '\t'}
bad = total = 0
for path in sorted(glob.glob(os.path.join(root, 'tests/mutants/*.md'))):
    if path.endswith('README.md'):
        continue
    cur, items = None, []
    for n, line in enumerate(open(path), 1):
        if line.startswith('## '):
            if cur: items.append(cur)
            cur = {'name': line[3:].strip(), 'at': f'{os.path.relpath(path, root)}:{n}'}
        elif cur is not None and ':' in line and line.split(':', 1)[0] in ('file', 'find', 'replace', 'suites', 'why'):
            k, v = line.split(':', 1)
            cur[k] = re.sub(r'\\(.)', lambda m: esc.get(m.group(1), m.group(1)), v.strip())
    if cur: items.append(cur)
    for it in items:
        total += 1
        missing = [k for k in ('file', 'find', 'replace', 'suites', 'why') if not it.get(k)]
        if missing:
            print(f"{it['at']}: mutant {it['name']}: no {', '.join(missing)}"); bad += 1; continue
        try:
            src = open(os.path.join(root, it['file'])).read()
        except OSError as e:
            print(f"{it['at']}: mutant {it['name']}: {it['file']}: {e.strerror}"); bad += 1; continue
        c = src.count(it['find'])
        if c != 1:
            print(f"{it['at']}: mutant {it['name']}: its find text occurs {c} times in {it['file']} "
                  f"(must be once: update the mutant to the code)"); bad += 1
print(f'mutants_check: {total} mutants, {bad} out of step', file=sys.stderr)
sys.exit(1 if bad else 0)
