/* Accesses that exercise Cachegrind's special cases (docs/cachegrind.md), for
 * tests/test_cachegrind.py: loads and a store that cross a 64-byte line boundary, a
 * read-modify-write (x86 `add $1, mem`: Lackey's `M`), and `fxsave`, whose 160-byte access
 * Cachegrind cuts to one line. */
#include <stdint.h>
#include <string.h>

#define LINES 512

static unsigned char buffer[LINES * 64 + 64] __attribute__((aligned(64)));
static uint64_t counters[LINES] __attribute__((aligned(64)));
static unsigned char fx_area[512] __attribute__((aligned(64)));
volatile uint64_t result; /* keeps the work from being optimised away */

int main(void) {
    uint64_t sum = 0;
    for (int pass = 0; pass < 4; pass++) {
        for (int i = 0; i < LINES; i++) {
            uint64_t word;
            memcpy(&word, buffer + 64 * i + 60, sizeof word); /* bytes 60..67: two lines */
            sum += word;
            memcpy(buffer + 64 * i + 62, &sum, 4);            /* bytes 62..65: two lines */
            counters[(i * 7) % LINES] += 1;                   /* one modify */
        }
        __asm__ volatile("fxsave %0" : "=m"(fx_area));
    }
    result = sum;
    return 0;
}
