/* libFuzzer target: the `harp report` results reader (tools/harp/report_read.c, built into this
 * target from the CLI's source): one JSON object, an array of objects, or one object per line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    rp_data d;
    memset(&d, 0, sizeof d);
    char err[512];
    err[0] = 0;
    int skipped = 0;
    /* a file that yields nothing must say why, in one line */
    if (rp_read_buf(buf, size, "fuzz/results.json", &d, &skipped, err, sizeof err) <= 0 && (!err[0] || strchr(err, '\n')))
        abort();
    rp_data_free(&d);
    free(buf);
    return 0;
}
