/* Butterfly schedules (algorithms.md §4.2, include/harp/rotate.h): the greedy mixed-radix
 * factorisation of the reference, and the hadamard schedule — the same learned stages behind a fixed
 * Had_K stage on the chunk index, with mixers that make it the RHT's Had_n at θ = 0 — plus the fixed
 * mixers M_b of the stages. */
#include <math.h>
#include <string.h>

#include "rot_internal.h"

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

const char *harp_bf_schedule_name(harp_bf_schedule s) {
    return s == HARP_BF_SCHEDULE_GREEDY ? "greedy" : s == HARP_BF_SCHEDULE_HADAMARD ? "hadamard" : NULL;
}

harp_status harp_bf_schedule_parse(const char *name, harp_bf_schedule *out) {
    for (int s = 0; s <= HARP_BF_SCHEDULE_HADAMARD; s++)
        if (name && !strcmp(name, harp_bf_schedule_name((harp_bf_schedule)s))) {
            *out = (harp_bf_schedule)s;
            return HARP_OK;
        }
    return harp_err(HARP_ERR_INVALID_ARG, "butterfly: unknown schedule '%s' (greedy, hadamard)", name ? name : "(null)");
}

/* Greedy radices of d appended at stages[*cnt]: base while it divides, then factors max..2, then one
 * leftover stage (a prime > max, as the reference does). */
static harp_status greedy(int64_t n, int64_t d, int base, int maxb, int *stages, int *cnt) {
    int64_t rem = d;
    while (rem > 1 && rem % base == 0 && *cnt < HARP_ROT_MAX_STAGES) stages[(*cnt)++] = base, rem /= base;
    for (int64_t f = rem < maxb ? rem : maxb; f >= 2; f--)
        while (rem > 1 && rem % f == 0 && *cnt < HARP_ROT_MAX_STAGES) stages[(*cnt)++] = (int)f, rem /= f;
    if (rem != 1) {
        if (*cnt >= HARP_ROT_MAX_STAGES || rem > 65536)
            return harp_err(HARP_ERR_UNSUPPORTED, "butterfly: n=%lld leaves a radix-%lld stage (too large)", (long long)n,
                            (long long)rem);
        stages[(*cnt)++] = (int)rem;
    }
    return HARP_OK;
}

harp_status bf_chunk_split(const int *stages, int T, int64_t m, int *syl) {
    int64_t step = 1;
    for (int t = 0; t < T; t++) {
        const int64_t b = stages[t];
        /* the digits of stage t are strides step … step·b; those below m lie inside the chunk */
        const int64_t lo = step >= m ? 1 : step * b <= m ? b : m / step;
        if (!is_pow2(lo) || b % lo)
            return harp_err(HARP_ERR_INVALID_ARG, "butterfly: stage %d (radix %lld) does not split at the chunk length %lld", t, (long long)b,
                            (long long)m);
        syl[t] = (int)lo;
        step *= b;
    }
    return HARP_OK;
}

harp_status bf_schedule(int64_t n, const harp_rot_params *p, int *stages, int *T, int *fixed_k) {
    int cnt = 0, K = 0;
    if (p->schedule != HARP_BF_SCHEDULE_GREEDY && p->schedule != HARP_BF_SCHEDULE_HADAMARD)
        return harp_err(HARP_ERR_INVALID_ARG, "butterfly: unknown schedule %d", p->schedule);
    if (p->schedule == HARP_BF_SCHEDULE_HADAMARD && !is_pow2(n) && harp_hadamard_choose_k(n, &K) != HARP_OK)
        return harp_err(HARP_ERR_UNSUPPORTED, "butterfly: schedule hadamard needs a Hadamard order for n=%lld (%s)", (long long)n,
                        harp_last_error());
    *fixed_k = K;
    if (p->n_stages > 0) {
        if (p->n_stages > HARP_ROT_MAX_STAGES)
            return harp_err(HARP_ERR_INVALID_ARG, "butterfly: %d stages (max %d)", p->n_stages, HARP_ROT_MAX_STAGES);
        int64_t prod = 1;
        for (int i = 0; i < p->n_stages; i++) {
            if (p->stages[i] < 2 || p->stages[i] > 65536)
                return harp_err(HARP_ERR_INVALID_ARG, "butterfly: stage %d has radix %d (must be 2..65536)", i,
                                p->stages[i]);
            prod *= p->stages[i];
            if (prod > n) break;
            stages[cnt++] = p->stages[i];
        }
        if (prod != n || cnt != p->n_stages)
            return harp_err(HARP_ERR_INVALID_ARG, "butterfly: stage radices do not multiply to n=%lld", (long long)n);
        *T = cnt;
        return HARP_OK;
    }
    int base = p->base_b > 0 ? p->base_b : 8, maxb = p->max_b > 0 ? p->max_b : 8;
    if (base < 2 || maxb < 2)
        return harp_err(HARP_ERR_INVALID_ARG, "butterfly: base_b=%d max_b=%d must be >= 2", base, maxb);
    HARP_TRY(greedy(n, n, base, maxb, stages, &cnt));
    if (cnt == 0) return harp_err(HARP_ERR_INVALID_ARG, "butterfly: n=%lld has no stages", (long long)n);
    *T = cnt;
    return HARP_OK;
}

/* Fixed per-radix orthogonal mixer for non-power-of-two b (seeded by b only, like the reference's
 * fixed_seed + 10007·b); it is stored in blobs, never regenerated on load. */
harp_status bf_mixer(int b, double *M) {
    harp_rng g;
    harp_rng_seed(&g, harp_seed_mix(0x4841525046495845ULL, 10007ULL * (uint64_t)b));
    for (size_t i = 0; i < (size_t)b * b; i++) M[i] = harp_rng_normal(&g);
    orth_qr_signfix(M, b);
    return HARP_OK;
}

const double *bf_mixer_of(const harp_rot *r, int b) {
    for (int i = 0; i < r->n_mix; i++)
        if (r->mix_b[i] == b) return r->mix[i];
    return NULL;
}

/* M_b[i][j] of a stage. With the fixed stage: H_syl/√syl ⊗ I_{b/syl} (Sylvester on the stage's digits
 * inside the chunk, identity on those of the chunk index, which F has mixed already), so that θ = 0
 * gives Had_n. Without: Sylvester/√b for powers of two, the stored matrix otherwise. */
void bf_mixer_fill(const harp_rot *r, const bf_stage *st, double *M) {
    int b = st->b, h = r->fixed ? st->syl : is_pow2(b) ? b : 0;
    if (!h) {
        memcpy(M, bf_mixer_of(r, b), (size_t)b * b * sizeof *M);
        return;
    }
    double s = 1.0 / sqrt((double)h);
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++)
            M[(size_t)i * b + j] = i / h != j / h ? 0.0 : (__builtin_popcount((unsigned)(i % h & j % h)) & 1) ? -s : s;
}
