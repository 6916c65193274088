/* Matrix multiply C += A * B over N x N doubles, in one of two loop orders (argv[1]):
 *   rows: i, k, j  -- the inner loop walks rows of B and C, one line after the other;
 *   cols: j, k, i  -- the inner loop walks columns of A and C, a new line on every step.
 * tests/test_cachegrind.py runs it under Cachegrind and under Lackey and compares the counts.
 * N = 40 keeps the Lackey trace under a million records (three 12.5 KiB matrices). */
#include <string.h>

#define N 40

static double a[N][N], b[N][N], c[N][N];
volatile double result; /* keeps the work from being optimised away */

int main(int argc, char **argv) {
    int by_columns = argc > 1 && strcmp(argv[1], "cols") == 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = i + j;
            b[i][j] = i - j;
        }
    if (by_columns) {
        for (int j = 0; j < N; j++)
            for (int k = 0; k < N; k++)
                for (int i = 0; i < N; i++)
                    c[i][j] += a[i][k] * b[k][j];
    } else {
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++)
                for (int j = 0; j < N; j++)
                    c[i][j] += a[i][k] * b[k][j];
    }
    result = c[N / 2][N / 3];
    return 0;
}
