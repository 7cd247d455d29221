/* harp — rotation-based 2–4 bit post-training quantization for Llama-family models.
 *
 * Public C11 API. Every function returns a harp_status (or a handle that is NULL on failure) and
 * reports details through the log callback; the library never prints to stdout and never exits.
 * Objects are opaque handles with _open/_create and _free functions (free accepts NULL). Option structs are
 * filled by the _default_params() functions and then adjusted by the caller.
 *
 * This header is the umbrella: module headers live in include/harp/ and are included below. */
#ifndef HARP_H
#define HARP_H

#include "harp/common.h"
#include "harp/tokenizer.h"
#include "harp/model.h"
#include "harp/qtype.h"
#include "harp/backend.h"
#include "harp/eval.h"
#include "harp/rotate.h"
#include "harp/qtype.h"
#include "harp/qtensor.h"
#include "harp/quant.h"
#include "harp/zeroshot.h"
#include "harp/calib.h"
#include "harp/harpfit.h"
#include "harp/qmodel.h"

#endif /* HARP_H */
