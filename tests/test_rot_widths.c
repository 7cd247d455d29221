/* Prints the width → K table of docs/hadamard-widths.md (markdown on stdout) and checks each row:
 * n = K·2^j, hadK exactly Hadamard, the butterfly's greedy(8,8) and hadamard schedules multiply to n
 * (the hadamard one: fixed Had_K stage, then learned stages over n/K and over K). */
#include <string.h>

#include "rot_test_util.h"
#include "test_util.h"

static const int64_t widths[] = {48,    64,    172,   192,   288,   320,   512,   576,   768,   864,   896,   960,
                                 1152,  1376,  1536,  1600,  2304,  2560,  2752,  3072,  3584,  4096,  4608,  4864,
                                 5120,  5632,  6144,  8960,  9728,  10240, 11008, 11264, 12288, 13824, 14336, 15360,
                                 17920, 18944, 22016, 27648, 28672, 37888, 57344};

int main(void) {
    harp_set_log_level(HARP_LOG_NONE);
    printf("| n | 2^a·r | K | n/K | hadK construction | butterfly greedy(8,8) | butterfly hadamard |\n"
           "|---:|---|---:|---:|---|---|---|\n");
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        int64_t n = widths[i], r = n;
        int a = 0;
        while (r % 2 == 0) r /= 2, a++;
        int K = 0;
        CHECK_OK(harp_hadamard_choose_k(n, &K));
        if (K <= 0) continue;
        int64_t q = n / K;
        CHECK_MSG(n % K == 0 && (q & (q - 1)) == 0, "n=%lld: n/K not a power of two", (long long)n);
        int8_t *H = malloc((size_t)K * K);
        const char *c = "";
        CHECK_OK(harp_hadamard_matrix(K, H, &c));
        int ok = 1;
        for (int x = 0; x < K && ok; x++)
            for (int y = 0; y < K && ok; y++) {
                long s = 0;
                for (int u = 0; u < K; u++) s += H[x * K + u] * H[y * K + u];
                ok = s == (x == y ? K : 0);
            }
        CHECK_MSG(ok, "K=%d: H·Hᵀ != K·I", K);
        free(H);
        char sched[2][96] = {"", ""};
        for (int sc = 0; sc < 2; sc++) {
            harp_rot_params p;
            harp_rot_params_default(&p);
            p.schedule = sc;
            harp_rot *bf = NULL;
            CHECK_OK(harp_rot_create(HARP_ROT_BUTTERFLY, n, &p, 0, &bf));
            if (!bf) continue;
            const int *st;
            int T = harp_rot_butterfly_stages(bf, &st), len = 0, fk = harp_rot_butterfly_fixed_k(bf);
            CHECK(fk == (sc && K > 1 ? K : 0));
            if (fk) len += snprintf(sched[sc], sizeof sched[sc], "Had_%d + ", fk);
            int64_t prod = 1;
            for (int t = 0; t < T; t++) {
                len += snprintf(sched[sc] + len, sizeof sched[sc] - (size_t)len, "%s%d", t ? "," : "[", st[t]);
                prod *= st[t];
            }
            snprintf(sched[sc] + len, sizeof sched[sc] - (size_t)len, "]");
            CHECK(prod == n);
            harp_rot_destroy(bf);
        }
        printf("| %lld | 2^%d·%lld | %d | %lld | %s | %s | %s |\n", (long long)n, a, (long long)r, K, (long long)q,
               K == 1 ? "none (pure FWHT)" : c, sched[0], K == 1 ? "= greedy" : sched[1]);
    }
    return t_done();
}
