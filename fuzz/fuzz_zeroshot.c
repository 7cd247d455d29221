/* libFuzzer target: the zero-shot task loaders (harp_zs_load) on a data folder written from the
 * input. Byte 0 picks the task (value % 5) and, for HellaSwag, whether the rest is the .bz2 file
 * (decoder and parser) or the plain 6-line text (parser); for PIQA the rest is split at its first
 * NUL into the items (.jsonl) and the labels (.lst). */
#include "fuzz_files.h"
#include "harp/zeroshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    harp_zs_task task = (harp_zs_task)(data[0] % HARP_ZS_N_TASKS);
    const uint8_t *a = data + 1, *b = NULL;
    size_t na = size - 1, nb = 0;
    const char *file = harp_zs_task_file(task);
    if (task == HARP_ZS_PIQA) {
        fuzz_split(data + 1, size - 1, &a, &na, &b, &nb);
        fuzz_put(harp_zs_task_labels_file(task), b ? b : (const uint8_t *)"", nb);
    }
    if (task == HARP_ZS_HELLASWAG) {
        int bz2 = (data[0] / HARP_ZS_N_TASKS) & 1;
        fuzz_put(file, bz2 ? a : NULL, na);
        fuzz_put("hellaswag_val_full.txt", bz2 ? NULL : a, na);
    } else {
        fuzz_put(file, a, na);
    }
    harp_zs_dataset *d = NULL;
    if (harp_zs_load(task, fuzz_dir(), (data[0] & 0x80) ? 3 : 0, &d) == HARP_OK) {
        size_t total = 0;
        for (int i = 0; i < d->n; i++) {
            const harp_zs_item *it = &d->items[i];
            /* the scorer indexes choices by gold: a loaded item must keep it in range */
            if (it->n_choices < 1 || it->n_choices > HARP_ZS_MAX_CHOICES || it->gold < 0 || it->gold >= it->n_choices) abort();
            for (int k = 0; k < it->n_choices; k++)
                total += strlen(it->ctx[k]) + strlen(it->cont[k]) + strlen(it->choice[k]);
        }
        volatile size_t sink = total;
        (void)sink;
        harp_zs_dataset_free(d);
    }
    return 0;
}
