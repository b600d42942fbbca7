/*
 * la-run: runs a program on liballoc's malloc shim.
 *
 *   la-run [--stats[=json]] [--debug] [--leak-exitcode N] [--suppressions FILE]
 *          [--log-path PREFIX] [--profile[=FILE]]
 *          [--fail-at N] [--verbose] [--] program [args...]
 *
 * It sets the LA_* variables the shim reads, puts liballoc_preload.so in
 * front of LD_PRELOAD and execs the program, so the program's exit status
 * is la-run's. The shim is found next to la-run's own executable (the build
 * tree: build/la-run and build/liballoc_preload.so) or in ../lib relative to
 * it (an install: PREFIX/bin/la-run and PREFIX/lib/liballoc_preload.so);
 * LA_PRELOAD_LIB overrides both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "liballoc.h" /* LA_VERSION_STRING */

static const char *usage_text =
    "usage: la-run [options] [--] program [args...]\n"
    "\n"
    "Runs program with liballoc's malloc replacement (LD_PRELOAD), passing\n"
    "its exit status through.\n"
    "\n"
    "options:\n"
    "  --stats            print allocation statistics (a table) on stderr at exit\n"
    "  --stats=json       print them as one JSON object instead\n"
    "  --debug            debug mode: stack traces on every allocation and free;\n"
    "                     double frees, invalid frees, overflows and writes after\n"
    "                     free abort with a report; leaks are reported at exit\n"
    "  --leak-exitcode N  with --debug, exit with status N when leaks are found\n"
    "                     (default: leaks do not change the exit status)\n"
    "  --suppressions F   with --debug, leave out leaks matching the leak:pattern\n"
    "                     lines of file F (LeakSanitizer format)\n"
    "  --log-path P       with --debug, write the leak report to the file P.<pid>\n"
    "                     (one per process) instead of stderr\n"
    "  --profile[=FILE]   sampled heap profile, written to FILE at exit (default\n"
    "                     la-profile.%p.raw; %p is the process id; without %p,\n"
    "                     the first process claims FILE, and a child of fork()\n"
    "                     or a program it runs writes FILE.<pid>; a process\n"
    "                     that took no sample writes no file of its own); read\n"
    "                     it with la-prof\n"
    "  --fail-at N        make allocation number N (from 1) fail with ENOMEM\n"
    "  --verbose          print one line when the shim starts\n"
    "  --help             print this help and exit\n"
    "  --version          print the version and exit\n"
    "\n"
    "environment: the options set LA_STATS, LA_DEBUG, LA_LEAK_EXITCODE,\n"
    "LA_SUPPRESSIONS, LA_LOG_PATH, LA_PROFILE, LA_FAIL_AT and LA_VERBOSE; LA_PRELOAD_LIB names the\n"
    "shim library to use instead of the one installed next to la-run.\n"
    "With --profile (set them yourself):\n"
    "  LA_PROFILE_RATE=SIZE      mean bytes allocated between samples (default 512k)\n"
    "  LA_PROFILE_INTERVAL=SECS  also append a profile every SECS seconds\n"
    "  LA_PROFILE_SIGNAL=1       also append a profile on SIGUSR2\n"
    "With --debug, these tune cost against coverage (set them yourself):\n"
    "  LA_DEBUG_FRAMES=N         frames per stack trace, 0 to 32 (default 8)\n"
    "  LA_DEBUG_QUARANTINE=SIZE  freed bytes held back before reuse\n"
    "                            (default 4m; suffixes k, m, g)\n"
    "  LA_DEBUG_FILL=SIZE|all    bytes of each freed block filled and checked\n"
    "                            for writes after free (default 4k; 0: none)\n"
    "  LA_DEBUG_UNWIND=auto|tables|fp  where a trace meets code built without\n"
    "                            frame pointers, go on with the unwind tables\n"
    "                            if it has under 3 frames (auto, default),\n"
    "                            always (tables: slower) or never (fp)\n";

static void die_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "la-run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'la-run --help' for more information.\n");
    exit(2);
}

/* Whether s is a non-empty decimal number that fits in an int. */
static int is_number(const char *s) {
    if (*s == 0) return 0;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++)
        if (*p < '0' || *p > '9' || n > 9) return 0;
    return 1;
}

/* The value of option `name` at argv[*i]: "--name=value" or "--name value". */
static const char *option_value(int argc, char **argv, int *i, const char *name) {
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (a[len] == '=') return a + len + 1;
    if (*i + 1 >= argc) die_usage("option '%s' needs a value", name);
    *i += 1;
    return argv[*i];
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* Finds liballoc_preload.so; writes its path into out. */
static int find_shim(char *out, size_t size) {
    const char *env = getenv("LA_PRELOAD_LIB");
    if (env && *env) {
        if (!file_exists(env)) {
            fprintf(stderr, "la-run: LA_PRELOAD_LIB=%s: no such file\n", env);
            return 0;
        }
        snprintf(out, size, "%s", env);
        return 1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return 0;
    *slash = 0;
    static const char *candidates[] = {"/liballoc_preload.so", "/../lib/liballoc_preload.so",
                                       "/../lib64/liballoc_preload.so"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s%s", self, candidates[i]);
        char real[PATH_MAX];
        if (file_exists(path) && realpath(path, real)) {
            snprintf(out, size, "%s", real);
            return 1;
        }
    }
    fprintf(stderr, "la-run: cannot find liballoc_preload.so next to %s or in %s/../lib\n", self,
            self);
    return 0;
}

int main(int argc, char **argv) {
    const char *stats = NULL, *leak_exitcode = NULL, *fail_at = NULL, *suppressions = NULL;
    const char *log_path = NULL, *profile = NULL;
    int debug = 0, verbose = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0) break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("la-run (liballoc) %s\n", LA_VERSION_STRING);
            return 0;
        } else if (strcmp(a, "--stats") == 0) {
            stats = "1";
        } else if (strncmp(a, "--stats=", 8) == 0) {
            if (strcmp(a + 8, "json") != 0 && strcmp(a + 8, "table") != 0)
                die_usage("--stats takes 'json' or 'table', not '%s'", a + 8);
            stats = strcmp(a + 8, "json") == 0 ? "json" : "1";
        } else if (strcmp(a, "--profile") == 0) {
            profile = "la-profile.%p.raw";
        } else if (strncmp(a, "--profile=", 10) == 0) {
            profile = a + 10;
            if (*profile == 0) die_usage("%s", "--profile= needs a file name");
        } else if (strcmp(a, "--debug") == 0) {
            debug = 1;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose = 1;
        } else if (strncmp(a, "--leak-exitcode", 15) == 0 && (a[15] == 0 || a[15] == '=')) {
            leak_exitcode = option_value(argc, argv, &i, "--leak-exitcode");
            if (!is_number(leak_exitcode) || atoi(leak_exitcode) > 255)
                die_usage("--leak-exitcode needs a number from 0 to 255, not '%s'", leak_exitcode);
        } else if (strncmp(a, "--fail-at", 9) == 0 && (a[9] == 0 || a[9] == '=')) {
            fail_at = option_value(argc, argv, &i, "--fail-at");
            if (!is_number(fail_at) || atoi(fail_at) < 1)
                die_usage("--fail-at needs an allocation number >= 1, not '%s'", fail_at);
        } else if (strncmp(a, "--suppressions", 14) == 0 && (a[14] == 0 || a[14] == '=')) {
            suppressions = option_value(argc, argv, &i, "--suppressions");
            if (!file_exists(suppressions))
                die_usage("cannot read suppressions file '%s'", suppressions);
        } else if (strncmp(a, "--log-path", 10) == 0 && (a[10] == 0 || a[10] == '=')) {
            log_path = option_value(argc, argv, &i, "--log-path");
            if (*log_path == 0) die_usage("%s", "--log-path needs a path prefix");
        } else {
            die_usage("unknown option '%s'", a);
        }
    }
    if (i >= argc) die_usage("%s", "no program to run");
    if ((leak_exitcode || suppressions || log_path) && !debug)
        die_usage("%s", "--leak-exitcode, --suppressions and --log-path need --debug");

    char shim[PATH_MAX];
    if (!find_shim(shim, sizeof shim)) return 127;
    unsetenv("LA_PRELOAD_LIB"); /* la-run's own: the shim would warn about it */

    if (stats) setenv("LA_STATS", stats, 1);
    if (debug) setenv("LA_DEBUG", "1", 1);
    if (verbose) setenv("LA_VERBOSE", "1", 1);
    if (leak_exitcode) setenv("LA_LEAK_EXITCODE", leak_exitcode, 1);
    if (fail_at) setenv("LA_FAIL_AT", fail_at, 1);
    if (suppressions) {
        char real[PATH_MAX];
        setenv("LA_SUPPRESSIONS", realpath(suppressions, real) ? real : suppressions, 1);
    }
    if (log_path) setenv("LA_LOG_PATH", log_path, 1);
    if (profile && debug) die_usage("%s", "--profile and --debug cannot be combined");
    if (profile) setenv("LA_PROFILE", profile, 1);
    const char *old = getenv("LD_PRELOAD");
    if (old && *old) {
        size_t len = strlen(shim) + strlen(old) + 2;
        char *both = malloc(len);
        if (!both) return 127;
        snprintf(both, len, "%s:%s", shim, old);
        setenv("LD_PRELOAD", both, 1);
    } else {
        setenv("LD_PRELOAD", shim, 1);
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "la-run: cannot run '%s': %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
