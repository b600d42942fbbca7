#!/usr/bin/env bash
# ensure-tools.sh: installs the tools the tests need when they are missing,
# so that `make test` works on a fresh machine.
#
#   mk/ensure-tools.sh pkg-config readelf nm python3 cc asan
#
# Each argument is a command looked up with `command -v`; "asan" instead
# means "the C compiler can build and run with -fsanitize=address,undefined";
# "rustfmt" and "clippy" mean "cargo fmt" / "cargo clippy" work, and are added
# with rustup when they do not; a shared library name (libjemalloc.so.2,
# the peers of the benchmarks) means "that file is in $LIBDIR"; "python3-venv"
# means "python3 -m venv works". Other missing
# tools are installed from Debian's packages (apt-get, waiting for a dpkg
# lock held by someone else). Already present: nothing happens.
set -euo pipefail

CC=${CC:-cc}
LIBDIR=${LIBDIR:-/usr/lib/x86_64-linux-gnu}
missing=()

package_for() {
    case "$1" in
        pkg-config) echo pkg-config ;;
        readelf | nm | ar | objdump | objcopy) echo binutils ;;
        ldd) echo libc-bin ;;
        cc | gcc) echo gcc ;;
        c++ | g++) echo g++ ;;
        clang) echo clang ;;
        python3) echo python3 ;;
        go) echo golang-go ;;
        valgrind) echo valgrind ;;
        libmimalloc.so.2) echo libmimalloc2.0 ;;
        libjemalloc.so.2) echo libjemalloc2 ;;
        libtcmalloc_minimal.so.4) echo libtcmalloc-minimal4 ;;
        asan) # the sanitizer runtimes of the compiler in use
            if "$CC" --version 2>/dev/null | grep -qi clang; then
                echo libclang-rt-dev
            else
                echo "libasan8 libubsan1"
            fi ;;
        *) echo "$1" ;;
    esac
}

sanitizers_work() {
    local dir
    dir=$(mktemp -d)
    printf 'int main(void) { return 0; }\n' >"$dir/t.c"
    local ok=1
    if "$CC" -fsanitize=address,undefined -o "$dir/t" "$dir/t.c" >/dev/null 2>&1 && "$dir/t"; then
        ok=0
    fi
    rm -rf "$dir"
    return $ok
}

# A command on the PATH, or a shared library (lib*.so.N) in $LIBDIR;
# python3-venv: `python3 -m venv` can make a venv with pip (Debian splits
# venv and ensurepip off python3).
present() {
    case "$1" in
        python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
        lib*.so.*) [ -e "$LIBDIR/$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# The Rust components come from rustup, not apt.
rust_components=()
for tool in "$@"; do
    case "$tool" in
        rustfmt | clippy)
            sub=fmt
            [ "$tool" = clippy ] && sub=clippy
            if ! cargo "$sub" --version >/dev/null 2>&1; then
                command -v rustup >/dev/null 2>&1 ||
                    { echo "ensure-tools: cargo $sub missing and no rustup to add it" >&2; exit 1; }
                rust_components+=("$tool")
            fi
            ;;
    esac
done
if [ ${#rust_components[@]} -gt 0 ]; then
    echo "ensure-tools: rustup component add ${rust_components[*]}"
    rustup component add "${rust_components[@]}"
fi

for tool in "$@"; do
    if [ "$tool" = rustfmt ] || [ "$tool" = clippy ]; then
        continue
    elif [ "$tool" = asan ]; then
        sanitizers_work || missing+=("$tool")
    elif ! present "$tool"; then
        missing+=("$tool")
    fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

packages=()
for tool in "${missing[@]}"; do
    # shellcheck disable=SC2207
    packages+=($(package_for "$tool"))
done
echo "ensure-tools: installing ${packages[*]} (for: ${missing[*]})"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${packages[@]}"

for tool in "${missing[@]}"; do
    if [ "$tool" = asan ]; then
        sanitizers_work || { echo "ensure-tools: $CC still cannot build with sanitizers" >&2; exit 1; }
    else
        present "$tool" || { echo "ensure-tools: $tool still missing" >&2; exit 1; }
    fi
done
