"""libhfam as a program of its own takes it: `meson install` (tags devel and runtime) into a
scratch folder; the headers installed are model/include/hfam's; the shared library exports
exactly the functions those headers declare (model/engine/libhfam.map); and consumer.c, built
against the installed tree with pkg-config's flags alone (hfam.pc, its prefix moved to the
scratch folder), mattes a frame with each model given.

    python3 test_install.py BUILD_DIR SOURCE_DIR MODEL...
"""

import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile

DECLARED = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(hfam_\w+)\s*\(", re.M)


def declared_functions(header_dir):
    names = set()
    for name in os.listdir(header_dir):
        with open(os.path.join(header_dir, name)) as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        names |= {m.group(1) for m in DECLARED.finditer(text)
                  if not m.group(0).lstrip().startswith("#")}
    return names


def exported_functions(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[2].split("@")[0] for line in out.splitlines()
            if len(line.split()) == 3 and line.split()[1] == "T"}


def find(root, name):
    hits = [os.path.join(d, name) for d, _, files in os.walk(root) if name in files]
    if len(hits) != 1:
        sys.exit(f"FAIL: {len(hits)} files named {name} installed under {root}")
    return hits[0]


def main():
    build, source, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        dest = os.path.join(scratch, "dest")
        install = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
                                  "--destdir", dest, "--tags", "devel,runtime"],
                                 capture_output=True, text=True)
        if install.returncode != 0:
            sys.exit(f"FAIL: meson install: {install.stdout}{install.stderr}(a target installed "
                     "but not built: list it in tests/model/install/meson.build's `installed`)")

        headers = os.path.join(source, "model", "include", "hfam")
        installed = os.path.dirname(find(dest, "hfam.h"))
        match, mismatch, errors = filecmp.cmpfiles(headers, installed, os.listdir(headers),
                                                   shallow=False)
        if mismatch or errors or sorted(os.listdir(installed)) != sorted(match):
            failures.append(f"installed headers {sorted(os.listdir(installed))} are not "
                            f"{sorted(os.listdir(headers))} as they are")

        library = find(dest, "libhfam.so")
        declared, exported = declared_functions(headers), exported_functions(library)
        if declared != exported:
            failures.append(f"libhfam.so exports {sorted(exported - declared)} beyond the "
                            f"headers and lacks {sorted(declared - exported)}")

        # hfam.pc as installed, its prefix moved into the scratch folder
        pc = find(dest, "hfam.pc")
        with open(pc) as f:
            text = f.read()
        prefix = re.search(r"^prefix=(.*)$", text, re.M).group(1)
        pc_dir = os.path.join(scratch, "pkgconfig")
        os.makedirs(pc_dir)
        with open(os.path.join(pc_dir, "hfam.pc"), "w") as f:
            f.write(text.replace(f"prefix={prefix}", f"prefix={dest}{prefix}", 1))
        env = dict(os.environ, PKG_CONFIG_PATH=pc_dir)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "hfam"], env=env,
                               check=True, capture_output=True, text=True).stdout.split()
        program = os.path.join(scratch, "consumer")
        subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-Wall", "-Wextra",
                        "-Wpedantic", "-Werror",
                        os.path.join(source, "tests", "model", "install", "consumer.c"),
                        *flags, "-lm", "-Wl,-rpath," + os.path.dirname(library), "-o", program],
                       check=True)
        # the program as a user runs it: meson test's LD_LIBRARY_PATH names the build's copy
        bare = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        linked = subprocess.run(["ldd", program], env=bare, check=True, capture_output=True,
                                text=True).stdout
        if os.path.dirname(library) not in linked:
            failures.append(f"consumer does not load the installed libhfam:\n{linked}")
        for model in models:
            run = subprocess.run([program, model], env=bare, capture_output=True, text=True)
            print(f"{os.path.basename(model)}: {run.stdout.strip()}{run.stderr.strip()}")
            if run.returncode != 0:
                failures.append(f"consumer {model}: exit {run.returncode}")
    for f in failures:
        print("FAIL:", f)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
