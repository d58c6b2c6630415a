"""Readies the ONNX Runtime side of hfam-bench: the pinned onnxruntime-node and the ONNX file.

    /usr/bin/python3 model/python/ort/prepare.py --model M.safetensors --size WxH -o OUT.onnx
        [--cache DIR]

Installs this directory's package-lock.json (onnxruntime-node 1.17.3, whose CPU libraries ship
in the package: `npm ci --ignore-scripts` downloads no other binary) once into
CACHE/node-ort-1.17.3-<lock hash> (npm_cache.py), exports the weight file's network to OUT.onnx
(reference/export_onnx.py), and prints `node_modules PATH` last, for NODE_PATH when running
ort_bench.js. Exits 77 (skip) without node and npm, or when the package is not in the cache and
the npm registry cannot be reached ($HFAMMATTE_OFFLINE set, no network).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
import npm_cache  # noqa: E402
from npm_cache import Unavailable  # noqa: E402

SKIP = 77
PREFIX = "node-ort-1.17.3"


def node_modules(cache: str, log=print) -> str:
    """node_modules with the pinned onnxruntime-node, installed once; Unavailable where that
    cannot be done without a network that is not there."""
    if not npm_cache.npm_ci_installed(HERE, cache, PREFIX) and not npm_cache.registry_reachable():
        raise Unavailable("onnxruntime-node is not in the cache "
                          f"({npm_cache.npm_ci_dest(HERE, cache, PREFIX)}) and the npm registry "
                          "is unreachable or $HFAMMATTE_OFFLINE is set")
    return npm_cache.npm_ci(HERE, cache, PREFIX, log)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="weight file (safetensors)")
    parser.add_argument("--size", required=True, help="WxH, multiples of 32")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    parser.add_argument("--cache", default=npm_cache.default_cache(),
                        help="download cache (default: $HFAMMATTE_CACHE or ~/.cache/hfammatte)")
    args = parser.parse_args(argv)
    try:
        modules = node_modules(args.cache)
    except Unavailable as e:
        print(f"skipped: {e}")
        return SKIP
    import export_onnx  # torch is imported only when there is something to run it in
    export_onnx.main(["--model", args.model, "--size", args.size, "-o", args.output])
    print(f"node_modules {modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
