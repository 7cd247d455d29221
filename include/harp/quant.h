/* quant module API: filled in by its module. */
#ifndef HARP_QUANT_H
#define HARP_QUANT_H
#endif
