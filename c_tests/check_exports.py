#!/usr/bin/env python3
"""check_exports: the library exports exactly what the header promises.

    check_exports.py HEADER SHARED_LIB [STATIC_LIB]
    check_exports.py --self-test HEADER SHARED_LIB [STATIC_LIB]

Parses the function (and extern variable) declarations of HEADER -- a small
C reader that drops comments, C++-only blocks, preprocessor lines and
struct/enum bodies -- then reads the dynamic symbol table of SHARED_LIB
with `nm -D --defined-only` and fails when
  * a declared function is not exported (the trap: C helpers compiled into a
    Rust library are not exported unless linked whole-archive with our own
    version script),
  * the library exports a symbol outside the la_ / LA_ namespace, or
  * the library exports an la_ symbol the header does not declare.
With STATIC_LIB, every declared function must also be defined in the archive
(read with readelf: nm skips rustc's LTO object there).

--self-test proves the checker can fail: a header with an extra prototype,
and a library that exports a symbol outside la_*, must both be rejected.
Prints "check_exports: N passed, N failed".
"""

import os
import re
import subprocess
import sys
import tempfile

PREFIXES = ("la_", "LA_")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def drop_preprocessor(text):
    """Keeps the C view: drops #-lines and the bodies of #ifdef __cplusplus."""
    out, stack = [], []  # stack of "is this branch live?"
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        # join continued preprocessor lines
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i]
        i += 1
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            if d.startswith("ifdef"):
                stack.append("__cplusplus" not in d)
            elif d.startswith("ifndef") or d.startswith("if"):
                stack.append(True)
            elif d.startswith("else"):
                stack[-1] = not stack[-1]
            elif d.startswith("endif"):
                stack.pop()
            continue
        if all(stack):
            out.append(line)
    return "\n".join(out)


def drop_braces(text):
    """Replaces every {...} block (struct, enum, union, inline body) by ';'."""
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            if depth == 0:
                out.append(";")
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def declared_symbols(header_text):
    """(functions, variables) declared by the header, as two sets of names."""
    text = drop_braces(drop_preprocessor(strip_comments(header_text)))
    functions, variables = set(), set()
    for stmt in text.split(";"):
        stmt = " ".join(stmt.split())
        if not stmt or stmt.startswith("typedef") or stmt.startswith("static"):
            continue
        if "(" in stmt:
            first = stmt.index("(")
            if stmt[first + 1:].lstrip().startswith("*"):
                continue  # a function pointer object (not used by the API)
            # the name stands before the first parenthesis; parameters may
            # themselves be function pointers
            m = re.search(r"(\w+)\s*\($", stmt[: first + 1])
            if m:
                functions.add(m.group(1))
        elif stmt.startswith("extern "):
            m = re.search(r"(\w+)\s*(\[[^\]]*\])?$", stmt)
            if m:
                variables.add(m.group(1))
    return functions, variables


def nm_defined(args, path):
    res = subprocess.run(["nm"] + args + [path], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"nm {' '.join(args)} {path} failed: {res.stderr.strip()}")
    syms = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms[parts[2].split("@")[0]] = parts[1]
    return syms


def archive_functions(path):
    """Global functions defined in a static archive. (readelf, not nm: nm
    reports "no symbols" for rustc's LTO object inside liballoc.a.)"""
    res = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"readelf -sW {path} failed: {res.stderr.strip()}")
    names = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(parts) == 8 and parts[3] in ("FUNC", "IFUNC") and parts[4] in ("GLOBAL", "WEAK") \
                and parts[6] != "UND":
            names.add(parts[7].split("@")[0])
    return names


def check(header, shared, static=None, quiet=False):
    """Returns the list of problems (empty when the library matches the header)."""
    with open(header) as f:
        text = f.read()
    functions, variables = declared_symbols(text)
    problems = []
    # Every macro the header defines is in the library's namespace too.
    for macro in re.findall(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)", text, re.M):
        if not macro.startswith(("LA_", "LIBALLOC_")):
            problems.append(f"{header}: defines macro {macro}, outside LA_*")
    if not functions:
        problems.append(f"{header}: no function declarations found")
    exported = nm_defined(["-D", "--defined-only"], shared)
    for name in sorted(functions):
        if exported.get(name) not in ("T", "W", "i"):
            problems.append(f"{shared}: declared function {name} is not exported")
    for name in sorted(variables):
        if name not in exported:
            problems.append(f"{shared}: declared variable {name} is not exported")
    for name in sorted(exported):
        if not name.startswith(PREFIXES):
            problems.append(f"{shared}: exports {name}, outside la_*")
        elif name not in functions and name not in variables:
            problems.append(f"{shared}: exports {name}, which {header} does not declare")
    if static:
        archive = archive_functions(static)
        for name in sorted(functions):
            if name not in archive:
                problems.append(f"{static}: declared function {name} is not defined")
    if not quiet:
        print(f"{header}: {len(functions)} functions, {len(variables)} variables declared; "
              f"{shared}: {len(exported)} symbols exported")
    return problems


def self_test(header, shared, static=None):
    """The checker must reject a wrong header and a leaky library."""
    results = []
    with open(header) as f:
        real = f.read()
    functions, _ = declared_symbols(real)
    # The reader finds the API, and not the vtable's function-pointer members.
    for name in ("la_alloc", "la_raw_alloc", "la_page_allocator", "la_dupez", "la_version"):
        results.append((f"parser finds {name}", name in functions))
    results.append(("parser skips struct members", "alloc" not in functions))
    results.append(("parser skips macros", "LA_CREATE" not in functions))
    sample = ('#ifdef __cplusplus\nextern "C" {\n#endif\n'
              "/* int la_commented(void); */\n"
              "typedef struct s { void *(*f)(int); } s;\n"
              "extern const int la_data;\n"
              "#define LA_M(x) la_m(x)\n"
              "void *la_two(size_t a,\n  size_t b);\n"
              "int la_cb(int (*test)(void *), void *ctx);\n"
              "extern void (*la_hook)(void);\n"
              "#ifdef __cplusplus\n}\n#endif\n")
    f, v = declared_symbols(sample)
    results.append(("parser on a sample header", f == {"la_two", "la_cb"} and v == {"la_data"}))

    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "extra.h")
        with open(fake, "w") as out:
            out.write(real + "\nvoid la_not_in_the_library(void);\n")
        probs = check(fake, shared, static, quiet=True)
        results.append(("header with an extra prototype is rejected",
                        any(p.startswith(shared) and "la_not_in_the_library" in p for p in probs)))
        with open(fake, "w") as out:
            out.write(real + "\n#define LIVE 1\n")
        results.append(("header with a macro outside LA_* is rejected",
                        any("macro LIVE" in p for p in check(fake, shared, quiet=True))))
        with open(fake, "w") as out:
            out.write(real + "\nvoid la_not_in_the_library(void);\n")
        probs = check(fake, shared, static, quiet=True)
        if static:
            results.append(("... also for the static library",
                            any(p.startswith(static) and "la_not_in_the_library" in p
                                for p in probs)))

        src = os.path.join(tmp, "leak.c")
        lib = os.path.join(tmp, "libleak.so")
        hdr = os.path.join(tmp, "leak.h")
        with open(src, "w") as out:
            out.write("int la_fine(void) { return 1; }\nint leaked_helper(void) { return 2; }\n")
        with open(hdr, "w") as out:
            out.write("int la_fine(void);\nint leaked_helper(void);\n")
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src], check=True)
        probs = check(hdr, lib, quiet=True)
        results.append(("export outside la_* is rejected",
                        any("leaked_helper" in p and "outside" in p for p in probs)))
        with open(src, "w") as out:
            out.write("int la_fine(void) { return 1; }\n"
                      "static int hidden(void) { return 2; }\n"
                      "int la_uses_hidden(void) { return hidden(); }\n")
        with open(hdr, "w") as out:
            out.write("int la_fine(void);\nint la_uses_hidden(void);\n")
        subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src], check=True)
        results.append(("a library matching its header passes", check(hdr, lib, quiet=True) == []))
        with open(hdr, "w") as out:
            out.write("int la_fine(void);\n")
        results.append(("an undeclared la_ export is rejected",
                        any("la_uses_hidden" in p for p in check(hdr, lib, quiet=True))))
    return results


def main(argv):
    if len(argv) >= 1 and argv[0] == "--self-test":
        if len(argv) not in (3, 4):
            raise SystemExit(__doc__)
        results = self_test(*argv[1:])
        for what, ok in results:
            if not ok:
                print(f"check_exports self-test failed: {what}", file=sys.stderr)
    else:
        if len(argv) not in (2, 3):
            raise SystemExit(__doc__)
        problems = check(*argv)
        for p in problems:
            print(p, file=sys.stderr)
        # one result per problem, at least one pass for the whole check
        results = [(p, False) for p in problems] or [("exports match", True)]
    passed = sum(ok for _, ok in results)
    failed = len(results) - passed
    print(f"check_exports: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
