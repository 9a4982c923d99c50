// Shared by the two AEAD cold-cost benchmarks (scripts/bench-aead-cold.sh): one 100-byte
// record (a ping's packet) sealed and opened under AES-256-GCM with a 4-byte header as
// associated data, timed warm (back to back) and cold (after a 64 MiB walk has evicted
// the caches, as after an idle tunnel's 20 ms between packets).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PAYLOAD = 100, WARM_ROUNDS = 100000, COLD_ROUNDS = 300 };
static const size_t evictBytes = 64u << 20;
static unsigned char *evictBuffer;

static void evictCaches(void) {
    volatile unsigned long sum = 0;
    for (size_t i = 0; i < evictBytes; i += 64) { evictBuffer[i]++; sum += evictBuffer[i]; }
}

static double nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

// Runs `seal` and `open` for counter 0, 1, …; prints the mean of each, warm and cold.
static void measure(const char *name, void (*seal)(unsigned long), int (*open)(unsigned long)) {
    evictBuffer = malloc(evictBytes);
    if (!evictBuffer) { perror("malloc"); exit(1); }
    memset(evictBuffer, 1, evictBytes);
    for (int cold = 0; cold <= 1; cold++) {
        int rounds = cold ? COLD_ROUNDS : WARM_ROUNDS, verified = 0;
        double sealTime = 0, openTime = 0;
        for (int i = 0; i < rounds; i++) {
            if (cold) evictCaches();
            double t0 = nanoseconds();
            seal((unsigned long)i);
            double t1 = nanoseconds();
            if (cold) evictCaches();
            double t2 = nanoseconds();
            verified += open((unsigned long)i);
            double t3 = nanoseconds();
            sealTime += t1 - t0;
            openTime += t3 - t2;
        }
        if (verified != rounds) { fprintf(stderr, "%s: %d of %d records failed to open\n", name, rounds - verified, rounds); exit(1); }
        printf("%s %s: seal %.0f ns, open %.0f ns (%d records)\n", name, cold ? "cold" : "warm",
               sealTime / rounds, openTime / rounds, rounds);
    }
}
