/* W/A/KV fake quantization of ref-llama through the reference path (slow label, about 5 CPU minutes): the model rotated by each R1 = R2 kind (R3, R4 online), weights by RTN with QuaRot's MSE
 * clip (symmetric, per channel), activations per token (asymmetric) at every linear input but the
 * head, K and V per (token, head) (asymmetric, fp16 scales), all with clip ratio 1. Prints KLD to the
 * fp model and the perplexity over 2 windows × 128 tokens of ref-corpus/test.txt, for W16A4KV4,
 * W4A16, W4A4KV4 and W3A3KV3, random and Hadamard with 3 seeds each.
 * Asserted (the robust claim of QuaRot, §6.5): with 4-bit activations and KV, every rotation kind
 * has a lower KLD than no rotation. The other orderings are printed, not asserted. */
#include "harp/tokenizer.h"
#include "wakv_test_hf.h"

enum { WIN = 128, NWIN = 2 };

typedef struct setting {
    const char *name;
    int w_bits, a_bits, kv_bits;
} setting;

static const setting settings[] = {{"W16A4KV4", 0, 4, 4}, {"W4A16", 4, 0, 0}, {"W4A4KV4", 4, 4, 4}, {"W3A3KV3", 3, 3, 3}};
enum { NSET = sizeof settings / sizeof settings[0] };

/* Dequantized RTN + MSE clip of every linear of one layer, in place. */
static void quantize_weights(harp_wakv_weights *w, int bits) {
    harp_quant_params p = harp_quant_default_params(HARP_QMETHOD_RTN, bits);
    p.group_size = 0, p.symmetric = 1;
    const harp_wclip wc = harp_wclip_default();
    const int64_t d = w->dims.d, hd = w->dims.head_dim, qm = w->dims.n_head * hd, kvm = w->dims.n_kv * hd;
    const int64_t I = w->dims.ffn, din = w->down_in ? w->down_in : I;
    for (int l = 0; l < w->dims.n_layer; l++) {
        harp_wakv_layer *L = &w->layers[l];
        float *mats[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        const int64_t rows[7] = {qm, kvm, kvm, d, I, I, d}, cols[7] = {d, d, d, qm, d, d, din};
        for (int k = 0; k < 7; k++) {
            harp_qtensor q = {0};
            CHECK_OK(harp_wq_rtn(&p, harp_wq_fit_mse, &wc, rows[k], cols[k], mats[k], "ref-llama linear", &q));
            CHECK_OK(harp_qtensor_dequantize(&q, mats[k]));
            harp_qtensor_free(&q);
        }
    }
}

/* mean KLD(fp ‖ q) over the predicted positions, and the perplexity of the next tokens */
static void score(const double *fp, const double *lq, const int *ids, int64_t V, double *kld, double *nll) {
    double k = 0, n = 0;
    for (int t = 0; t < WIN - 1; t++) {
        const double *a = fp + t * V, *b = lq + t * V;
        double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
        for (int64_t j = 0; j < V; j++) ma = fmax(ma, a[j]), mb = fmax(mb, b[j]);
        for (int64_t j = 0; j < V; j++) sa += exp(a[j] - ma), sb += exp(b[j] - mb);
        const double la = ma + log(sa), lb = mb + log(sb);
        for (int64_t j = 0; j < V; j++) k += exp(a[j] - la) * ((a[j] - la) - (b[j] - lb));
        n -= b[ids[t + 1]] - lb;
    }
    *kld += k / (WIN - 1), *nll += n / (WIN - 1);
}

int main(void) {
    const char *dir = t_shared("models/ref-llama/model.safetensors");
    char mdir[1024];
    snprintf(mdir, sizeof mdir, "%.*s", (int)(strlen(dir) - strlen("/model.safetensors")), dir);
    const char *text_path = t_shared("data/ref-corpus/test.txt");
    harp_wakv_weights w;
    wt_arch ar;
    CHECK(wt_load_hf(mdir, &w, &ar));
    harp_tokenizer *tok = NULL;
    CHECK_OK(harp_tokenizer_open_for_model(mdir, (int)w.dims.vocab, &tok));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(harp_read_file(text_path, &text, &len));
    int32_t *tid = NULL;
    size_t ntok = 0;
    CHECK_OK(harp_tokenize(tok, text, len < 200000 ? len : 200000, 1, &tid, &ntok));
    if (!tid || ntok < (size_t)(WIN * NWIN)) return t_done();
    int ids[NWIN][WIN];
    for (int k = 0; k < NWIN; k++)
        for (int t = 0; t < WIN; t++) ids[k][t] = tid[k * WIN + t];
    const int64_t V = w.dims.vocab;
    double *fp = malloc((size_t)(NWIN * WIN * V) * sizeof *fp), *lq = malloc((size_t)(WIN * V) * sizeof *lq);
    double fp_nll = 0;
    for (int k = 0; k < NWIN; k++) {
        wt_forward(&w, &ar, NULL, NULL, NULL, ids[k], WIN, fp + k * WIN * V);
        double z = 0;
        score(fp + k * WIN * V, fp + k * WIN * V, ids[k], V, &z, &fp_nll);
    }
    printf("ref-llama fp32 weights: ppl %.4f over %d × %d tokens\n", exp(fp_nll / NWIN), NWIN, WIN);
    printf("| rotation | seed | %s |\n|---|---|", "KLD / ppl: W16A4KV4 | W4A16 | W4A4KV4 | W3A3KV3");
    for (int s = 0; s < NSET; s++) printf("---|");
    printf("\n");
    const harp_wakv_rkind kinds[] = {HARP_WAKV_ROT_NONE, HARP_WAKV_ROT_RANDOM, HARP_WAKV_ROT_HADAMARD, HARP_WAKV_ROT_GSR};
    double kld_a4[4] = {0};   /* W16A4KV4, mean over seeds */
    for (int k = 0; k < 4; k++) {
        const int seeds = kinds[k] == HARP_WAKV_ROT_RANDOM || kinds[k] == HARP_WAKV_ROT_HADAMARD ? 3 : 1;
        for (int sd = 0; sd < seeds; sd++) {
            harp_wakv_rot_params p = harp_wakv_rot_params_default();
            p.r1 = p.r2 = kinds[k], p.seed = (uint64_t)sd;
            harp_wakv_rots R;
            harp_wakv_weights rw;
            CHECK_OK(harp_wakv_rots_create(&p, &w.dims, &R));
            CHECK_OK(harp_wakv_rotate(&w, &R, &rw));
            printf("| %s | %d |", harp_wakv_rkind_name(kinds[k]), sd);
            int wq_bits = 0;
            for (int s = 0; s < NSET; s++) {
                const setting *st = &settings[s];
                if (st->w_bits != wq_bits) {   /* settings are ordered so that each weight width comes once */
                    harp_wakv_weights_free(&rw);
                    CHECK_OK(harp_wakv_rotate(&w, &R, &rw));
                    if (st->w_bits) quantize_weights(&rw, st->w_bits);
                    wq_bits = st->w_bits;
                }
                wt_quant qz = {{st->a_bits, 0, 0, 1.0f, 0}, {st->kv_bits, 0, w.dims.head_dim, 1.0f, 1}};
                double kld = 0, nll = 0;
                for (int win = 0; win < NWIN; win++) {
                    wt_forward(&rw, &ar, R.r3, R.r4, &qz, ids[win], WIN, lq);
                    score(fp + win * WIN * V, lq, ids[win], V, &kld, &nll);
                }
                kld /= NWIN;
                if (s == 0) kld_a4[k] += kld / seeds;
                printf(" %.4f / %.3f |", kld, exp(nll / NWIN));
                fflush(stdout);
            }
            printf("\n");
            harp_wakv_weights_free(&rw);
            harp_wakv_rots_free(&R);
        }
    }
    for (int k = 1; k < 4; k++)
        CHECK_MSG(kld_a4[k] < kld_a4[0], "W16A4KV4: %s KLD %.4f not below no rotation %.4f", harp_wakv_rkind_name(kinds[k]),
                  kld_a4[k], kld_a4[0]);
    free(fp), free(lq), free(tid), free(text);
    harp_tokenizer_free(tok);
    wt_free(&w);
    return t_done();
}
