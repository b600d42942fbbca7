// C++ array blocks for the differential check against LeakSanitizer.
//
//   kept      new int[250], its pointer kept in a global     (reachable)
//   dropped   new int[250], its pointer dropped              (leaked)
//   cookie    new Counted[100]: the array has a length cookie in front, so
//             the global holds an interior pointer           (reachable)
//   cookie-dropped  the same, dropped                        (leaked)
#include <cstring>

struct Counted {
    int n = 0;
    ~Counted() { n = -1; }
};

static void *volatile keep;

__attribute__((noinline)) static void clobber_stack() {
    volatile char buf[16384];
    for (unsigned i = 0; i < sizeof buf; i++) buf[i] = 0;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "kept";
    if (!std::strcmp(m, "kept") || !std::strcmp(m, "dropped")) {
        keep = new int[250];
    } else {
        keep = new Counted[100];
    }
    if (std::strstr(m, "dropped")) keep = nullptr;
    clobber_stack();
    return 0;
}
