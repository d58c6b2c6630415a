"""Turns a kernels/*.cu into C++ that the CUDA emulator builds (README.md here):

- each launch `kernel<<<grid, block[, shared[, stream]]>>> (args)` becomes
  `hfam_emu::Launch<BARRIERS> (grid, block[, shared[, stream]]) ([] (auto... p) { kernel
  (p...); }, args)`, a call that deduces a template kernel's arguments as the launch does;
  BARRIERS says whether the kernel, or a function of the file that it calls, has barriers or
  warp shuffles: its blocks then run as fibers, which are slower;
- `__shared__ T name[N]...;` becomes a reference to the block's copy (hfam_emu::shared), which
  every block starts filled with 0xff bytes (NaN, -1), so that a read before the write that a
  missing barrier lets through shows; `extern __shared__ T name[];` (dynamic shared memory)
  becomes a pointer to the launch's;
- a `#line` keeps the compiler's messages on the .cu's own lines.

    translate.py INPUT.cu OUTPUT.cc
"""

import re
import sys

BARRIERS = re.compile(r"\b(__syncthreads\w*|__syncwarp|__shfl\w*)\s*\(")
LAUNCH = re.compile(r"(\b[A-Za-z_]\w*)(\s*<[^<>;]*>)?\s*<<<(.*?)>>>\s*\(\s*(\)?)", re.S)
DYNAMIC_SHARED = re.compile(r"extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;")
STATIC_SHARED = re.compile(r"__shared__\s+(\w+)\s+(\w+)((?:\s*\[[^\]]+\])+)\s*;")
DEFINITION = re.compile(r"\b([A-Za-z_]\w*)\s*\([^;{}()]*\)\s*\{")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "return", "sizeof"}


def function_bodies(text):
    """Each function defined in the file: name -> its body (of the last one of that name)."""
    bodies = {}
    for match in DEFINITION.finditer(text):
        if match.group(1) in NOT_FUNCTIONS:
            continue
        depth, end = 0, match.end() - 1
        while end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        bodies[match.group(1)] = text[match.end():end]
    return bodies


def barrier_functions(bodies):
    """The functions that reach a barrier, themselves or through the file's other functions."""
    reach = {name for name, body in bodies.items() if BARRIERS.search(body)}
    grown = True
    while grown:
        grown = False
        for name, body in bodies.items():
            if name not in reach and any(re.search(r"\b%s\s*\(" % re.escape(callee), body)
                                         for callee in reach):
                reach.add(name)
                grown = True
    return reach


def translate(text):
    bodies = function_bodies(COMMENT.sub(" ", text))
    with_barriers = barrier_functions(bodies)

    def launch(match):
        name, template, config, no_args = match.groups()
        kernel = name + (template or "")
        barriers = "true" if name in with_barriers or name not in bodies else "false"
        opening = "hfam_emu::Launch<%s> (%s) " % (barriers, config)
        if no_args:
            return opening + "([] { %s (); })" % kernel
        return opening + "([] (auto... p) { %s (p...); }, " % kernel

    text = LAUNCH.sub(launch, text)
    text = DYNAMIC_SHARED.sub(
        r"\1 *\2 = static_cast<\1 *> (hfam_emu::dynamic_shared ());", text)
    return STATIC_SHARED.sub(r"\1 (&\2)\3 = hfam_emu::shared<\1\3, __LINE__> ();", text)


def main():
    source, output = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    with open(output, "w", encoding="utf-8") as handle:
        handle.write('#line 1 "%s"\n' % source)
        handle.write(translate(text))


if __name__ == "__main__":
    main()
