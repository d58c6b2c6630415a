"""The layout's rules (ARCHITECTURE.md), checked on the source tree:

- no C or CUDA file over 1000 lines, in the tests as elsewhere;
- the project's includes form no cycle;
- include arrows point down the stack: every file includes only headers of its own layer or of
  a lower one (the layers below, bottom first);
- the element and the installed tools see libhfam's public headers only.

    python3 tests/layout.py SOURCE_ROOT
"""

import os
import re
import sys

MAX_LINES = 1000
SOURCES = (".c", ".h", ".cu", ".cuh")

# Bottom first. A file belongs to the first layer with a pattern matching its path.
LAYERS = [
    ("kernels and libhfam's types", [r"^kernels/", r"^model/include/hfam/hfam-types\.h$"]),
    ("the weight file", [r"^model/engine/(safetensors|hparams)\.[ch]$"]),
    ("the graph", [r"^model/engine/graph\.[ch]$"]),
    ("the backends", [r"^model/engine/backend", r"^model/engine/cuda/"]),
    ("libhfam's API and its implementation",
     [r"^model/include/hfam/hfam\.h$", r"^model/engine/"]),
    ("the element, the tools and the tests", [r"^gst/", r"^tools/", r"^tests/"]),
]

# What only sees the public API (libhfam_dep): the element and the installed tools.
PUBLIC_ONLY = [r"^gst/", r"^tools/(hfam-matte|hfam-eval|matte-picture|matte-read|imageio|decode)"]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of(path):
    for index, (_, patterns) in enumerate(LAYERS):
        if any(re.search(p, path) for p in patterns):
            return index
    return None


def project_files(root):
    files = []
    for folder in ("gst", "kernels", "model", "tests", "tools"):
        for dirpath, dirnames, names in os.walk(os.path.join(root, folder)):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "python"]
            for name in names:
                if name.endswith(SOURCES):
                    files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(files)


def resolve(root, source, bracket, name, headers):
    """The project header an include names, or None (a system header)."""
    if bracket == "<":
        candidate = os.path.join("model/include", name)
        return candidate if candidate in headers else None
    beside = os.path.normpath(os.path.join(os.path.dirname(source), name))
    if beside in headers:
        return beside
    # the include folders every target may have: kernels/, model/include/, model/engine/
    for folder in ("kernels", "model/include", "model/engine"):
        candidate = os.path.join(folder, name)
        if candidate in headers:
            return candidate
    return None


def main():
    root = sys.argv[1]
    files = project_files(root)
    headers = {f for f in files if f.endswith((".h", ".cuh"))}
    problems = []
    graph = {}

    for f in files:
        with open(os.path.join(root, f), encoding="utf-8") as handle:
            text = handle.read()
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{f}: {lines} lines, over {MAX_LINES}")
        graph[f] = []
        for bracket, name in INCLUDE.findall(text):
            target = resolve(root, f, bracket, name, headers)
            if target:
                graph[f].append(target)

    for f, targets in graph.items():
        mine = layer_of(f)
        for t in targets:
            theirs = layer_of(t)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{f} ({LAYERS[mine][0]}) includes {t}, which is above it "
                                f"({LAYERS[theirs][0]})")
            if any(re.search(p, f) for p in PUBLIC_ONLY) and not (
                    t.startswith("model/include/") or os.path.dirname(t) == os.path.dirname(f)):
                problems.append(f"{f} sees only libhfam's public API, but includes {t}")

    # cycles: a depth-first search that reports the first loop through each file
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for t in graph.get(node, []):
            if state.get(t) == "open":
                problems.append("include cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[node] = "done"

    for f in files:
        if f not in state:
            visit(f, [])

    for p in problems:
        print("FAIL", p)
    print(f"{len(files)} files, {sum(len(t) for t in graph.values())} project includes, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
